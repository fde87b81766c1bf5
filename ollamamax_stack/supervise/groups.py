"""A service's process group: its members, the one that serves, and ending it whole.

supervisord makes each program the leader of its own process group (pgid = its pid), so a
wrapper shell and the server it forks share one group. Like systemd's KillMode=control-group,
a crashed service's whole group is ended before it is restarted, so no orphan keeps its port.
Members are checked against the stack's marks, never taken by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from ollamamax_stack.supervise import sweep


def members(pgid: int, run_dir: Path, service: str) -> list[psutil.Process]:
    """Live processes of process group `pgid` that carry this stack's marks for `service`."""
    found = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            proc = psutil.Process(pid)
            if sweep.is_service(proc, run_dir, service) and not sweep.gone(proc):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def end(pgid: int | None, run_dir: Path, service: str, timeout: float = 2.0) -> int:
    """End what is left of a service's group (SIGTERM, SIGKILL after `timeout`); how many."""
    if not pgid:
        return 0
    left = members(pgid, run_dir, service)
    sweep.end(left, timeout)
    return len(left)


def listens(proc: psutil.Process, ports: set[int]) -> bool:
    """Whether `proc` listens on one of `ports` (TCP)."""
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports
                   for c in proc.net_connections(kind="tcp"))
    except (psutil.Error, OSError):
        return False


def serving_pid(pid: int, ports: set[int]) -> int:
    """The process of `pid`'s group that listens on one of `ports` (`pid` itself when none)."""
    if not ports:
        return pid
    try:
        main = psutil.Process(pid)
        if listens(main, ports):
            return pid
        for child in main.children(recursive=True):
            if listens(child, ports):
                return child.pid
    except psutil.Error:
        pass
    return pid
