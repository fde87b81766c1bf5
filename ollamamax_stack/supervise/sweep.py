"""Find and end every process of a stack, by the marks ollamamax gave them — never by name."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from ollamamax_stack.markers import RUN_DIR_ENV, SERVICE_ENV
from ollamamax_stack.supervise.config import SUPERVISOR_ENV


def _ancestors() -> set[int]:
    pids = {os.getpid()}
    try:
        pids.update(p.pid for p in psutil.Process().parents())
    except psutil.Error:
        pass
    return pids


def _marked(env: dict[str, str], run_dir: str) -> bool:
    # OLLAMAMAX_RUN_DIR alone is not enough: a user may export it in the shell that runs us.
    if env.get(SUPERVISOR_ENV) == run_dir:
        return True
    return env.get(RUN_DIR_ENV) == run_dir and SERVICE_ENV in env


def _same_dir(value: str | None, run_dir: Path) -> bool:
    return value is not None and (value == str(run_dir) or value == str(run_dir.resolve()))


def is_service(proc: psutil.Process, run_dir: Path, service: str) -> bool:
    """Whether `proc` carries this stack's marks for `service` (its environment, not its name)."""
    try:
        env = proc.environ()
    except (psutil.Error, OSError):
        return False
    return env.get(SERVICE_ENV) == service and _same_dir(env.get(RUN_DIR_ENV), run_dir)


def service_of(proc: psutil.Process, run_dir: Path) -> str | None:
    """The service of this stack that `proc` belongs to, by its marks."""
    try:
        env = proc.environ()
    except (psutil.Error, OSError):
        return None
    return env.get(SERVICE_ENV) if _same_dir(env.get(RUN_DIR_ENV), run_dir) else None


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def stack_processes(run_dir: Path, sessions: set[int] | None = None,
                    spare: set[int] | None = None) -> list[psutil.Process]:
    """Processes marked as this stack's (environment), or in a session supervisord leads.

    Never this process, its ancestors, or the pids in `spare`.
    """
    wanted = str(run_dir.resolve())
    skip = _ancestors() | (spare or set())
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid in skip:
            continue
        try:
            if gone(proc):
                continue
            if sessions and _session(proc.pid) in sessions:
                found.append(proc)
                continue
            if _marked(proc.environ(), wanted):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def gone(proc: psutil.Process) -> bool:
    """Whether a process has ended (a zombie counts: it holds no port and runs no code)."""
    # Our strays are not our children: init reaps them, sometimes seconds later. A zombie holds
    # no port and runs no code, so it counts as gone.
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def wait_all(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process is gone (or a zombie); those still alive after `timeout`."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = [p for p in alive if not gone(p)]
    return alive


def end(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """SIGTERM, then SIGKILL after `timeout`; the processes that still would not go."""
    for proc in processes:
        for signum in (signal.SIGTERM, signal.SIGCONT):  # a stopped process must wake to die
            try:
                proc.send_signal(signum)
            except psutil.Error:
                pass
    alive = wait_all(processes, timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return wait_all(alive, 2.0)


def verified_session(pid: int | None, run_dir: Path) -> int | None:
    """`pid` if it is still this stack's supervisord (so its session is ours to end), else None."""
    if not pid:
        return None
    try:
        env = psutil.Process(pid).environ()
    except (psutil.Error, OSError):
        return None
    return pid if env.get(SUPERVISOR_ENV) == str(run_dir.resolve()) else None


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether the process `pid` ended (or became a zombie) within `timeout`."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    return not wait_all([proc], timeout)
