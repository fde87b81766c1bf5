"""The supervisor's own parts under kill -9, concurrent commands, a deleted run dir, a full disk."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.fixtures.stacks.harness import ROOT, Stack


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _restarted(name: str, count: int) -> Any:
    return lambda s: any(x["name"] == name and x["ready"] and x["restarts"] == count
                         for x in s["services"])


def _wait_gone(stack: Stack, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.processes():
        assert time.monotonic() < deadline, [p.cmdline() for p in stack.processes()]
        time.sleep(0.05)


def _roles(stack: Stack) -> dict[str, list[int]]:
    """The stack's supervisord and watcher processes by role."""
    found: dict[str, list[int]] = {"supervisord": [], "watcher": []}
    for proc in stack.processes():
        line = " ".join(proc.cmdline())
        if "supervise.supervisord" in line:
            found["supervisord"].append(proc.pid)
        elif "supervise.watcher" in line:
            found["watcher"].append(proc.pid)
    return found


def test_services_die_with_supervisord_and_up_brings_the_stack_back(make_stack: Any) -> None:
    stack = make_stack("basic")
    assert stack.cli("up", "-d", "api").returncode == 0
    status = stack.status()
    supervisord = status["supervisord"]["pid"]
    assert supervisord == _roles(stack)["supervisord"][0]
    os.kill(supervisord, signal.SIGKILL)
    _wait_gone(stack)  # no service outlives its supervisor, nor does the watcher
    down = stack.status()
    assert down["stack"] == "down" and down["exit"] == 3
    assert stack.holder(stack.port("api")) is None
    again = stack.cli("up", "-d", "api")
    assert again.returncode == 0, again.stdout + again.stderr
    time.sleep(1.5)  # the new watcher must not take the dead supervisord's "ready" for crashes
    back = stack.status()
    assert back["stack"] == "up" and {s["restarts"] for s in back["services"]} == {0}
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_a_foreground_up_says_supervisord_died_and_exits_1(make_stack: Any,
                                                            tmp_path: Path) -> None:
    stack = make_stack("basic")
    out = tmp_path / "up.out"
    up = stack.popen("up", "api", out=out)
    try:
        stack.wait_for(lambda s: s["stack"] == "up", what="stack up")
        os.kill(stack.status()["supervisord"]["pid"], signal.SIGKILL)
        assert up.wait(timeout=30) == 1
    finally:
        if up.poll() is None:
            up.kill()
    assert "supervisord died, and the services with it" in out.read_text()
    _wait_gone(stack)
    stack.assert_clean()


def test_status_tells_what_runs_unsupervised_and_up_takes_over(make_stack: Any) -> None:
    stack = make_stack("shell")
    assert stack.cli("up", "-d", "child").returncode == 0
    status = stack.status()
    server = stack.holder(stack.port("child"))
    assert server is not None
    supervisord, watcher = status["supervisord"]["pid"], status["watcher"]["pid"]
    os.kill(supervisord, signal.SIGSTOP)  # so that it cannot restart the watcher we kill
    os.kill(watcher, signal.SIGKILL)
    os.kill(supervisord, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(p.pid != server for p in stack.processes()):  # the shell dies with supervisord
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _alive(server)  # the shell's child, orphaned with nobody to end it
    seen = stack.status()
    assert seen["exit"] == 1 and seen["stack"] == "degraded"
    child = next(s for s in seen["services"] if s["name"] == "child")
    assert child["state"] == "unsupervised" and child["pid"] == server
    assert "running unsupervised" in stack.cli("status").stdout
    again = stack.cli("up", "-d", "child")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not _alive(server)
    assert stack.status()["stack"] == "up"
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_a_killed_watcher_is_restarted_and_restarts_crashes(make_stack: Any) -> None:
    stack = make_stack("basic")
    assert stack.cli("up", "-d", "api").returncode == 0
    # supervisord calls its listener `starting` for its first second (startsecs=1).
    watcher = stack.wait_for(lambda s: s["watcher"]["state"] == "running",
                             what="the watcher running")["watcher"]
    assert watcher["pid"] == _roles(stack)["watcher"][0]
    os.kill(watcher["pid"], signal.SIGKILL)
    back = stack.wait_for(lambda s: s["watcher"]["state"] == "running"
                          and s["watcher"]["pid"] not in (None, watcher["pid"]),
                          what="a new watcher")
    assert back["stack"] == "up"
    assert "watcher: running" in stack.cli("status").stdout
    os.kill(stack.service("api")["pid"], signal.SIGKILL)
    stack.wait_for(_restarted("api", 1), what="api restarted by the new watcher")
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_three_ups_at_once_make_one_supervisor_and_one_restart_per_crash(
        make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack("basic")
    ups = [stack.popen("up", "-d", "api", out=tmp_path / f"up{i}.out") for i in range(3)]
    codes = [up.wait(timeout=60) for up in ups]
    outputs = [(tmp_path / f"up{i}.out").read_text() for i in range(3)]
    assert codes == [0, 0, 0], outputs
    roles = _roles(stack)
    assert len(roles["supervisord"]) == 1 and len(roles["watcher"]) == 1, roles
    os.kill(stack.service("api")["pid"], signal.SIGKILL)
    stack.wait_for(_restarted("api", 1), what="api restarted")
    time.sleep(1.5)  # a second watcher would restart it again meanwhile
    starts = [r for r in stack.times() if r["service"] == "api" and r["event"] == "start"]
    assert len(starts) == 2 and stack.service("api")["restarts"] == 1
    assert stack.cli("down").returncode == 0
    stack.assert_clean()


def test_down_stops_a_stack_whose_run_dir_was_deleted(make_stack: Any, tmp_path: Path) -> None:
    doomed, bystander = make_stack("basic"), make_stack("basic")
    while bystander.offset == doomed.offset:
        bystander = make_stack("basic")
    assert doomed.cli("up", "-d", "api").returncode == 0
    assert bystander.cli("up", "-d", "api").returncode == 0
    left = len(doomed.processes())
    subprocess.run(["rm", "-rf", str(doomed.run_dir)], check=True)
    seen = doomed.status()  # the truth: it runs, under a supervisord nobody can reach
    assert seen["exit"] == 1 and seen["supervisord"]["state"] == "unreachable"
    states = {s["name"]: s["state"] for s in seen["services"]}
    assert states["db"] == states["api"] == "running" and states["edge"] == "stopped"
    done = doomed.cli("down", "--timeout", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to stop" not in done.stdout and f"ended {left}" in done.stdout
    doomed.assert_clean()
    assert bystander.status()["stack"] == "up"  # another stack is not ours to stop
    assert bystander.cli("down").returncode == 0
    bystander.assert_clean()


def _fill(mount: Path) -> Path:
    """Fill the file system to its last byte, every log up to the end of its last page too."""
    for log in mount.rglob("*.log"):
        with open(log, "ab") as handle:  # the next line written needs a new page
            handle.write(b"#" * (-log.stat().st_size % 4096))
    filler = mount / "filler"
    with open(filler, "ab", buffering=0) as handle:
        for size in (65536, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        if os.environ.get("CI"):
            raise AssertionError(f"cannot mount a tmpfs: {done.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_neither_breaks_down_nor_silences_the_watcher(
        make_stack: Any, small_disk: Path) -> None:
    stack = make_stack("basic", run_dir=small_disk / "run")
    assert stack.cli("up", "-d", "api").returncode == 0
    filler = _fill(small_disk)
    watcher = stack.status()["watcher"]["pid"]
    crashed = stack.service("api")["pid"]
    os.kill(crashed, signal.SIGKILL)
    # It cannot record anything, but it restarts the crash all the same.
    stack.wait_for(lambda s: any(x["name"] == "api" and x["ready"] and x["pid"] != crashed
                                 for x in s["services"]), what="api restarted on a full disk")
    assert _alive(watcher)
    seen = stack.cli("status")
    assert seen.returncode == 0 and "Traceback" not in seen.stderr
    filler.unlink()
    filler = _fill(small_disk)
    done = stack.cli("down", "--timeout", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    stack.assert_clean()
    assert list(stack.run_dir.glob("*.tmp")) == []
    again = stack.cli("up", "-d", "api")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert again.stderr.count("\n") == 1 and str(stack.run_dir) in again.stderr, again.stderr
    assert "No space left on device" in again.stderr
    stack.assert_clean()
    assert list(stack.run_dir.glob("*.tmp")) == []
    filler.unlink()


def test_lock_refuses_a_second_up_after_its_wait(make_stack: Any) -> None:
    stack = make_stack("basic")
    stack.run_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
         str(stack.run_dir / "stack.lock")], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        done = stack.cli("up", "-d", "api", env={"OLLAMAMAX_LOCK_TIMEOUT": "0.5"})
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and "another up or down" in done.stderr
        assert f"pid {holder.pid}" in done.stderr
        assert stack.processes() == []
    finally:
        holder.kill()
        holder.wait()
