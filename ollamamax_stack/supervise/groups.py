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


def listening_pids(ports: set[int]) -> dict[int, int]:
    """port -> the pid listening on it, for each of `ports` that one listens on: one scan of
    the host's sockets for the whole stack (a scan per process costs milliseconds each)."""
    found: dict[int, int] = {}
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return found
    for conn in connections:
        if (conn.status == psutil.CONN_LISTEN and conn.laddr and conn.pid
                and conn.laddr.port in ports):
            found.setdefault(conn.laddr.port, conn.pid)
    return found


def serving_pid(pid: int, ports: set[int], listening: dict[int, int]) -> int:
    """The process of `pid` (itself or a descendant) that listens on one of `ports`, as
    `listening_pids` found them; `pid` itself when none."""
    for port in ports:
        holder = listening.get(port)
        if holder is None or holder == pid:
            continue
        try:
            if any(parent.pid == pid for parent in psutil.Process(holder).parents()):
                return holder
        except psutil.Error:
            continue
    return pid
