"""`ollamamax events --json` while the real gateway is killed -9 and the watcher brings it back."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.stacks.harness import Stack, held_config, running_with_fake_ollama

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    made = Stack("held", tmp_path / "run", held_config(tmp_path))
    with running_with_fake_ollama(made):
        yield made


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_events_show_a_killed_gateway_crash_back_off_restart_and_be_ready(
        stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "events.out"
    killed = stack.service("gateway")["pid"]
    since = datetime.now().isoformat()  # the events from here on: none of the start's
    follower = stack.popen("events", "--json", "--since", since, out=out)
    try:
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not any(e["service"] == "gateway" and e["action"] == "ready" and "worker" not in e
                      for e in _lines(out)):
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
    finally:
        follower.terminate()
        follower.wait(10)
    seen = [e for e in _lines(out) if e["service"] == "gateway" and "worker" not in e]
    assert [e["action"] for e in seen] == ["crash", "backoff", "restart", "ready"], seen
    crash, backoff, restart, ready = seen
    assert crash["from"] == "ready" and crash["to"] == "restarting" and crash["pid"] == killed
    assert "killed by a signal" in crash["reason"] and "restart 1/" in backoff["reason"]
    assert restart["restarts"] == 1 and ready["to"] == "ready" and ready["pid"] != killed
    assert [e["time"] for e in seen] == sorted(e["time"] for e in seen)
    # The new worker's own events carry the service's restart count too.
    workers = [e for e in _lines(out) if e["service"] == "gateway" and "worker" in e
               and e["action"] == "ready"]
    assert workers and workers[-1]["restarts"] == 1, workers
    # `status` reads the same truth the events tell.
    assert stack.service("gateway")["pid"] == ready["pid"]
    assert stack.service("gateway")["restarts"] == 1
    # --since reads back what was written before it started, then exits with --no-follow.
    again = stack.cli("events", "--since", "5m", "--no-follow")
    assert again.returncode == 0
    assert "gateway: crash (restarting): worker gateway.0a was killed by a signal" in again.stdout
