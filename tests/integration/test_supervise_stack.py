"""`ollamamax up/down/status/...` on fixture stacks of real programs on real ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.fixtures.stacks.harness import ROOT, Stack


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def _ready_times(stack: Stack) -> dict[str, float]:
    return {r["service"]: r["t"] for r in stack.times() if r["event"] == "ready"}


def test_up_starts_in_dependency_order_and_down_leaves_nothing(make_stack: Any) -> None:
    stack = make_stack("basic")
    done = stack.cli("up", "-d")
    assert done.returncode == 0, done.stdout + done.stderr
    status = stack.status()
    assert status["stack"] == "up" and status["exit"] == 0
    assert {s["name"] for s in status["services"]} == {"db", "api", "worker", "stubborn", "edge"}
    for service in status["services"]:
        assert service["ready"] is True and service["state"] == "ready"
        assert isinstance(service["pid"], int) and service["restarts"] == 0
        assert service["url"] == f"http://127.0.0.1:{stack.port(service['name'])}"
    assert next(s for s in status["services"] if s["name"] == "api")["ports"] == {
        "http": 21002 + stack.offset, "admin": 21006 + stack.offset}

    # No service started before every one of its dependencies was ready (their own clocks).
    starts = {r["service"]: r["t"] for r in stack.times() if r["event"] == "start"}
    ready = _ready_times(stack)
    for name, service in stack.registry.services.items():
        for dep in service.depends_on:
            assert starts[name] >= ready[dep], f"{name} started before {dep} was ready"

    # Every service gets its ports and every service's URL, all shifted by the offset.
    env = _get(f"http://127.0.0.1:{stack.port('api')}/env")["env"]
    assert env["PORT"] == str(21002 + stack.offset)
    assert env["PORT_ADMIN"] == str(21006 + stack.offset)
    assert env["OLLAMAMAX_DB_URL"] == f"http://127.0.0.1:{21001 + stack.offset}"
    assert env["OLLAMAMAX_RUN_DIR"] == str(stack.run_dir)

    again = stack.cli("up", "-d")  # up when up: nothing restarts, the table is shown
    assert again.returncode == 0, again.stderr
    assert "ready after" in again.stdout and "starting" not in again.stdout
    assert [s["pid"] for s in stack.status()["services"]] == [s["pid"] for s in status["services"]]

    logs = stack.cli("logs", "-n", "3", "api")
    assert logs.returncode == 0 and "api" in logs.stdout and "ready" in logs.stdout

    grandchildren = [p for p in stack.processes() if "--grandchild" in " ".join(p.cmdline())]
    assert len(grandchildren) == 3  # worker, its grandchild in the group, and the daemon
    down = stack.cli("down", "--timeout", "1")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "SIGKILL" in down.stdout  # stubborn ignored SIGTERM
    stack.assert_clean()
    assert not (stack.run_dir / "supervisord.sock").exists()
    assert stack.status()["exit"] == 3
    twice = stack.cli("down")
    assert twice.returncode == 0 and "nothing to stop" in twice.stdout


def test_crash_and_failed_liveness_restart_the_service(make_stack: Any) -> None:
    stack = make_stack("basic")
    assert stack.cli("up", "-d", "api").returncode == 0
    assert {s["name"] for s in stack.status()["services"]} == {"db", "api"}  # nothing more
    before = stack.service("api")
    os.kill(before["pid"], signal.SIGKILL)
    after = stack.wait_for(lambda s: any(x["name"] == "api" and x["ready"] and x["restarts"] == 1
                                         for x in s["services"]), what="api restarted")
    api = next(s for s in after["services"] if s["name"] == "api")
    assert api["pid"] != before["pid"]
    assert _get(f"{api['url']}/ready")["ready"] is True

    urllib.request.urlopen(f"{api['url']}/break", timeout=5).read()  # /health now fails
    stack.wait_for(lambda s: any(x["name"] == "api" and x["ready"] and x["restarts"] == 2
                                 for x in s["services"]), what="liveness restart")
    assert "liveness probe failed" in (stack.run_dir / "watcher.log").read_text()
    assert stack.cli("down", "--timeout", "1").returncode == 0
    stack.assert_clean()


def test_a_service_that_always_crashes_ends_fatal(make_stack: Any) -> None:
    stack = make_stack("crashloop")
    assert stack.cli("up", "-d").returncode == 0
    status = stack.wait_for(lambda s: any(x["name"] == "flappy" and x["state"] == "fatal"
                                          for x in s["services"]), what="flappy fatal")
    flappy = next(s for s in status["services"] if s["name"] == "flappy")
    assert flappy["restarts"] == 2 and flappy["pid"] is None
    assert status["stack"] == "failed" and status["exit"] == 1  # flappy is not optional
    text = stack.cli("status")
    assert "restart limit 2" in text.stdout and "failed: flappy" in text.stdout
    assert stack.cli("down", "--timeout", "1").returncode == 0
    stack.assert_clean()


def test_a_service_crashing_at_start_fails_up_and_leaves_nothing(make_stack: Any) -> None:
    stack = make_stack("crashing")
    done = stack.cli("up", "-d")
    assert done.returncode == 1
    assert "boom: cannot open /nonexistent/config.yaml" in done.stderr
    assert "start-up line 30" in done.stderr and "start-up line 10" not in done.stderr  # 20 lines
    assert "boom exited with status 3 before it was ready" in done.stderr
    assert "after" not in {r["service"] for r in stack.times()}  # its dependent never started
    stack.assert_clean()


def test_a_never_ready_service_fails_up_within_its_timeout(make_stack: Any) -> None:
    stack = make_stack("neverready")
    started = time.monotonic()
    done = stack.cli("up", "-d")
    assert done.returncode == 1
    assert time.monotonic() - started < 1.5 + 8  # its 1.5 s timeout, plus start and stop
    assert "stuck not ready after 1.5s" in done.stderr
    assert "stuck[" in done.stderr  # its last log lines
    stack.assert_clean()


def test_a_foreign_listener_refuses_the_start(make_stack: Any) -> None:
    stack = make_stack("basic")
    holder = subprocess.Popen([sys.executable, "-m", "http.server", str(stack.port("worker")),
                               "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", stack.port("worker"))) == 0:
                    break
            time.sleep(0.05)
        done = stack.cli("up", "-d")
        assert done.returncode == 1
        assert f"pid {holder.pid}" in done.stderr and "http.server" in done.stderr
        assert "nothing was started" in done.stderr
        assert stack.processes() == [] and stack.times() == []
    finally:
        holder.kill()
        holder.wait()


def test_an_optional_dependency_down_degrades_but_dependents_start(make_stack: Any) -> None:
    stack = make_stack("optional")
    done = stack.cli("up", "-d")
    assert done.returncode == 1, done.stdout + done.stderr  # up, but degraded
    assert "no-such-program-ollamamax" in done.stdout
    status = stack.status()
    states = {s["name"]: s["state"] for s in status["services"]}
    assert status["stack"] == "degraded"
    assert states == {"ext": "unreachable", "app": "ready", "extra": "skipped", "gone": "skipped"}
    text = stack.cli("status").stdout
    assert "ext: not reachable" in text and "not installed" in text
    assert "apt-get install gone-server" in text
    time.sleep(1.5)  # the watcher reconciles every second: an unavailable program is not retried
    gone = stack.service("gone")
    assert gone["state"] == "skipped" and gone["restarts"] == 0
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_foreground_up_stops_in_reverse_order_on_sigint(make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack("basic")
    out = tmp_path / "up.out"
    up = stack.popen("up", "edge", out=out)  # all but stubborn, which would make us wait 10 s
    try:
        stack.wait_for(lambda s: s["stack"] == "up", what="stack up")
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:
            up.kill()
    text = out.read_text()
    assert "db[" in text and "api[" in text  # services' own output, prefixed
    order = [line.split("|")[0].strip() for line in text.splitlines() if line.endswith("stopping")]
    assert order.index("edge") < order.index("api") < order.index("db")
    assert order.index("worker") < order.index("db")
    stack.assert_clean()


def test_down_cleans_up_after_a_killed_foreground_up(make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack("basic")
    up = stack.popen("up", "db", "worker", out=tmp_path / "up.out")
    stack.wait_for(lambda s: s["stack"] == "up", what="stack up")
    up.kill()  # like a closed terminal that could not clean up
    up.wait()
    assert stack.status()["stack"] == "up"  # supervisord runs on in its own session
    done = stack.cli("down")
    assert done.returncode == 0, done.stdout + done.stderr
    stack.assert_clean()


def test_ready_is_notified_only_after_every_service_is_ready(make_stack: Any) -> None:
    stack = make_stack("basic")
    received: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory(prefix="ntf") as short:
        path = os.path.join(short, "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(0.2)
            done_event = threading.Event()

            def listen() -> None:
                while not done_event.is_set():
                    try:
                        data = sock.recv(4096)
                    except TimeoutError:
                        continue
                    received.append((time.time(), data.decode()))

            thread = threading.Thread(target=listen)
            thread.start()
            try:
                assert stack.cli("up", "-d", env={"NOTIFY_SOCKET": path}).returncode == 0
            finally:
                done_event.set()
                thread.join()
    ready_at = [t for t, message in received if "READY=1" in message.splitlines()]
    assert len(ready_at) == 1
    assert any(m.startswith("STATUS=") for _, m in received if "READY=1" not in m)
    assert max(_ready_times(stack).values()) <= ready_at[0]


def test_two_stacks_run_side_by_side(make_stack: Any, tmp_path: Path) -> None:
    first, second = make_stack("basic"), make_stack("basic")
    while second.offset == first.offset:  # each picks a free offset at random: make them differ
        second = make_stack("basic")
    assert first.cli("up", "-d", "api").returncode == 0
    assert second.cli("up", "-d", "api").returncode == 0
    for stack in (first, second):
        status = stack.status()
        assert status["stack"] == "up"
        assert _get(f"http://127.0.0.1:{stack.port('api')}/env")["env"]["OLLAMAMAX_RUN_DIR"] == (
            str(stack.run_dir))
    assert first.cli("down").returncode == 0
    assert second.status()["stack"] == "up"
    assert second.cli("down").returncode == 0
    first.assert_clean()
    second.assert_clean()


def test_a_deep_run_dir_gets_a_short_socket(make_stack: Any, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    stack = make_stack("basic", run_dir=deep)
    assert len(str(deep / "supervisord.sock")) > 107
    assert stack.cli("up", "-d", "db").returncode == 0
    assert stack.status()["stack"] == "up"
    assert not (deep / "supervisord.sock").exists()
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_stop_start_restart_from_another_terminal(make_stack: Any) -> None:
    stack = make_stack("basic")
    assert stack.cli("up", "-d", "worker", "api").returncode == 0
    stopped = stack.cli("stop", "worker")
    assert stopped.returncode == 0, stopped.stderr
    status = stack.status()
    assert status["stack"] == "degraded"
    assert next(s for s in status["services"] if s["name"] == "worker")["state"] == "stopped"
    assert stack.cli("start", "worker").returncode == 0
    old = stack.service("api")["pid"]
    assert stack.cli("restart", "api").returncode == 0
    api = stack.service("api")
    assert api["ready"] and api["pid"] != old
    assert stack.status()["stack"] == "up"
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_commands_that_need_the_stack_say_it_is_down(make_stack: Any) -> None:
    stack = make_stack("basic")
    done = stack.cli("restart", "api")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not running" in done.stderr
    assert stack.cli("status").returncode == 3
    assert ROOT.exists()
