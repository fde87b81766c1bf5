"""The restart policy where the watcher applies it: backoff, the count, `fatal`, liveness."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import urllib.request
from typing import Any

from ollamamax_stack.hostports import bindable
from tests.fixtures.stacks.harness import Stack

RESTART = re.compile(r"restart (\d+)/(\d+) in ([\d.]+)s")


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def _restarts(stack: Stack, name: str) -> list[tuple[int, float]]:
    """(count, delay) of every restart the watcher announced for `name`, in order."""
    found = []
    for line in stack.watcher_lines(name):
        match = RESTART.search(line)
        if match:
            found.append((int(match.group(1)), float(match.group(3))))
    return found


def _state(stack: Stack, name: str, wanted: str) -> Any:
    return lambda s: any(x["name"] == name and x["state"] == wanted for x in s["services"])


def _wait_bindable(port: int) -> None:
    deadline = time.monotonic() + 10
    while not bindable("127.0.0.1", port):
        assert time.monotonic() < deadline, f"port {port} never freed"
        time.sleep(0.01)


def test_a_port_taken_by_a_stranger_backs_off_doubling_then_ends_fatal(make_stack: Any) -> None:
    stack = make_stack("policy")
    assert stack.cli("up", "-d", "crashy").returncode == 0
    port = stack.port("crashy")
    os.kill(stack.service("crashy")["pid"], signal.SIGKILL)
    _wait_bindable(port)
    with socket.socket() as stranger:  # this test's own process takes the port
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind(("127.0.0.1", port))
        stranger.listen(64)
        status = stack.wait_for(_state(stack, "crashy", "fatal"), timeout=40, what="fatal")
        time.sleep(1.5)  # long past the last backoff: nothing restarts it any more
        assert _restarts(stack, "crashy") == [(1, 0.2), (2, 0.4), (3, 0.8)]
        fatal = [line for line in stack.watcher_lines("crashy") if "fatal" in line]
        assert len(fatal) == 1 and f"pid {os.getpid()}" in fatal[0], fatal
        crashy = next(s for s in status["services"] if s["name"] == "crashy")
        assert crashy["restarts"] == 3 and crashy["pid"] is None
        assert f"port {port} is held by pid {os.getpid()}" in crashy["reason"]
        assert stack.service("crashy")["restarts"] == 3
        text = stack.cli("status").stdout
        assert f"pid {os.getpid()}" in text and "restart limit 3" in text
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def _served_again(url: str, old: int) -> int:
    """Poll the service itself (not `status`) until a new process serves ready; its pid."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            answer = _get(f"{url}/ready")
            if answer["ready"] and answer["pid"] != old:
                return int(answer["pid"])
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{url} not served by a new process")


def test_the_count_resets_only_after_stable_readiness(make_stack: Any) -> None:
    stack = make_stack("policy")
    assert stack.cli("up", "-d", "crashy").returncode == 0
    url, pid = stack.service("crashy")["url"], stack.service("crashy")["pid"]
    os.kill(pid, signal.SIGKILL)
    pid = _served_again(url, pid)
    os.kill(pid, signal.SIGKILL)  # at once: well before `stable` (4 s), a second crash in a row
    pid = _served_again(url, pid)
    assert _restarts(stack, "crashy") == [(1, 0.2), (2, 0.4)]
    time.sleep(5)  # ready for longer than `stable`: the next crash is a first one again
    os.kill(pid, signal.SIGKILL)
    stack.wait_for(lambda s: any(x["name"] == "crashy" and x["ready"] and x["restarts"] == 3
                                 for x in s["services"]), what="restart 3")
    assert _restarts(stack, "crashy") == [(1, 0.2), (2, 0.4), (1, 0.2)]
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_a_log_that_cannot_be_written_ends_fatal_naming_it(make_stack: Any) -> None:
    stack = make_stack("policy")
    assert stack.cli("up", "-d", "crashy").returncode == 0
    log = stack.run_dir / "logs" / "crashy.log"
    log.unlink()
    log.mkdir()  # supervisord cannot open it for the next spawn: SPAWN_ERROR
    os.kill(stack.service("crashy")["pid"], signal.SIGKILL)
    status = stack.wait_for(_state(stack, "crashy", "fatal"), timeout=40, what="fatal")
    crashy = next(s for s in status["services"] if s["name"] == "crashy")
    assert crashy["restarts"] == 3 and str(log) in crashy["reason"]
    assert [n for n, _ in _restarts(stack, "crashy")] == [1, 2, 3]
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_a_frozen_service_is_unresponsive_at_once_then_restarted(make_stack: Any) -> None:
    stack = make_stack("policy")
    assert stack.cli("up", "-d", "live").returncode == 0
    frozen = stack.service("live")["pid"]
    os.kill(frozen, signal.SIGSTOP)
    try:
        seen = stack.wait_for(_state(stack, "live", "unresponsive"), what="unresponsive")
        live = next(s for s in seen["services"] if s["name"] == "live")
        assert live["restarts"] == 0 and live["pid"] == frozen  # not yet restarted
        assert "liveness" in live["reason"]
        assert seen["stack"] == "degraded"
        after = stack.wait_for(lambda s: any(x["name"] == "live" and x["ready"]
                                             and x["restarts"] == 1 for x in s["services"]),
                               what="restarted")
        assert next(s for s in after["services"] if s["name"] == "live")["pid"] != frozen
        assert "liveness probe failed 6 times in a row" in "\n".join(stack.watcher_lines("live"))
    finally:
        try:
            os.kill(frozen, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_health_that_flaps_below_the_threshold_is_not_restarted(make_stack: Any) -> None:
    stack = make_stack("policy")
    assert stack.cli("up", "-d", "live").returncode == 0
    url = stack.service("live")["url"]
    pid = stack.service("live")["pid"]
    for _ in range(3):
        served = _get(f"{url}/probes")["probes"]["served"]
        _get(f"{url}/flap?n=5")  # the next 5 probes fail: one fewer than `failures` (6)
        deadline = time.monotonic() + 20
        while True:  # until the 5 failures and one success after them were probed
            probes = _get(f"{url}/probes")["probes"]
            if probes["failing"] == 0 and probes["served"] >= served + 6:
                break
            assert time.monotonic() < deadline, probes
            time.sleep(0.1)
    live = stack.service("live")
    assert live["restarts"] == 0 and live["pid"] == pid and live["state"] == "ready"
    assert not any("liveness probe failed" in line for line in stack.watcher_lines("live"))
    assert stack.cli("down").returncode == 0
    stack.assert_clean()
