"""`ports who`: every listener on the given ports, like `lsof -i :PORT`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ollamamax_stack.hostports import Listener, listeners


def holders(ports: list[int]) -> dict[int, list[Listener]]:
    """The listeners of each port (an empty list: the port is free)."""
    found: dict[int, list[Listener]] = {port: [] for port in ports}
    for listener in listeners(set(ports)):
        found[listener.port].append(listener)
    return found


def as_dict(port: int, held: list[Listener], service: str | None,
            run_dir: Path | None) -> dict[str, Any]:
    """The JSON shape of one port: free or its listeners."""
    return {
        "port": port,
        "service": service,
        "free": not held,
        "listeners": [{
            "address": item.address,
            "family": item.family,
            "pid": item.pid,
            "user": item.user,
            "command": item.command,
            "started": item.started.isoformat(timespec="seconds") if item.started else None,
            "this_stack": bool(run_dir and item.owned_by(run_dir)),
        } for item in held],
    }


def as_lines(port: int, held: list[Listener], service: str | None,
             run_dir: Path | None) -> list[str]:
    """`13100 IPv4 127.0.0.1 pid 42 user root started 2026-01-01 10:00:00: python3 ...`."""
    label = f"{port} ({service})" if service else str(port)
    if not held:
        return [f"{label} free"]
    lines = []
    for item in held:
        started = item.started.isoformat(sep=" ", timespec="seconds") if item.started else "?"
        mine = " [this stack]" if run_dir and item.owned_by(run_dir) else ""
        pid = item.pid if item.pid is not None else "?"
        lines.append(f"{label} {item.family} {item.address} pid {pid} user {item.user or '?'} "
                     f"started {started}{mine}: {item.command or '?'}")
    return lines
