"""What the orchestrator and the workers share: how a start ended, and whether a pid runs.

A leaf module (it imports no other of supervise/), so orchestrator.py and workers.py both
import it instead of each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ollamamax_stack.supervise.rpc import ProcessInfo


@dataclass(frozen=True)
class Outcome:
    """How one attempt to bring a service up ended."""

    ready: bool
    reason: str | None = None
    ready_ms: int | None = None
    pid: int | None = None
    unavailable: bool = False  # cannot run here at all (not installed): don't retry
    started_at: float | None = None  # wall clock of the attempt's start


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def ended(info: ProcessInfo) -> str:
    """How a process supervisord reaped ended: `exited with status 3`, `was killed by a signal`."""
    if info.exitstatus < 0:
        return "was killed by a signal"
    return f"exited with status {info.exitstatus}"
