"""A service slow to stop holds up nobody: the watcher's stops never block its event loop."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from typing import Any

from tests.fixtures.stacks.harness import Stack


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def _wait(what: str, predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _log_says(stack: Stack, name: str, text: str) -> bool:
    try:
        return text in (stack.run_dir / "logs" / f"{name}.log").read_text(errors="replace")
    except OSError:
        return False


def _starts(stack: Stack, name: str) -> list[dict[str, Any]]:
    return [t for t in stack.times() if t["service"] == name and t["event"] == "start"]


def test_a_slow_stop_holds_up_neither_crash_handling_nor_other_probes(make_stack: Any) -> None:
    stack = make_stack("slowstop")
    assert stack.cli("up", "-d").returncode == 0
    crashy, steady = stack.service("crashy"), stack.service("steady")
    # stubborn fails its liveness probe: the watcher stops it, and it ignores the SIGTERM, so
    # the stop lasts the watcher's whole stop timeout (then SIGKILL).
    _wait("stubborn's first stop", lambda: _log_says(stack, "stubborn", "ignoring SIGTERM"))
    probed = _get(f"{steady['url']}/probes")["probes"]["served"]
    os.kill(crashy["pid"], signal.SIGKILL)
    killed = time.time()
    # crashy's backoff (1 s) is much longer than stubborn's (0.1 s): only a watcher that went
    # on with crashy while stubborn was stopping restarts crashy before stubborn.
    again = _wait("crashy restarted", lambda: [t for t in _starts(stack, "crashy")
                                                if t["t"] > killed])
    stubborn = _wait("stubborn restarted", lambda: _starts(stack, "stubborn")[1:])
    assert again[0]["t"] < stubborn[0]["t"], (
        f"crashy restarted {again[0]['t'] - killed:.1f}s after its kill, "
        f"stubborn's stop ended {stubborn[0]['t'] - killed:.1f}s after it")
    # steady's liveness probe kept its period (0.5 s) all through stubborn's stop (seconds).
    during = _get(f"{steady['url']}/probes")["probes"]["served"] - probed
    window = time.time() - killed
    assert during >= window / 0.5 / 3, f"steady probed {during} times in {window:.1f}s"
    assert stack.cli("down").returncode == 0
    stack.assert_clean()
