"""A service's and a worker's states, the moves between them, and the event each move is.

Standard library only, like supervisord's `states.py`: everything else imports this.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where a service is in its life, as `status` shows it."""

    STARTING = "starting"
    READY = "ready"
    UNRESPONSIVE = "unresponsive"  # runs, but its latest liveness probe failed
    RESTARTING = "restarting"  # crashed or failed liveness; waiting out its backoff or readiness
    FATAL = "fatal"  # gave up after the restart limit
    FAILED = "failed"  # did not start (exited, or missed its readiness timeout) during `up`
    SKIPPED = "skipped"  # not started: a dependency failed, or its program is missing
    STOPPED = "stopped"  # stopped on request
    UNREACHABLE = "unreachable"  # an external service that does not answer
    COMPLETED = "completed"  # a task (kind = "task") that ran to a clean exit: nothing to run
    # Seen, never moved to: what `status` finds when the processes disagree with the record.
    EXITED = "exited"  # its process is gone and nobody is restarting it
    UNSUPERVISED = "unsupervised"  # runs, but supervisord is gone: nobody would restart it
    RUNNING = "running"  # runs under a supervisord that does not answer: readiness unknown


S = Status
# The legal moves of the machine; a move to the same state is always legal (a new reason).
MOVES: dict[Status, frozenset[Status]] = {
    S.STARTING: frozenset({S.READY, S.FAILED, S.SKIPPED, S.STOPPED, S.UNREACHABLE,
                           S.RESTARTING, S.COMPLETED}),
    S.READY: frozenset({S.STARTING, S.UNRESPONSIVE, S.RESTARTING, S.STOPPED, S.UNREACHABLE,
                        S.SKIPPED}),
    S.UNRESPONSIVE: frozenset({S.READY, S.RESTARTING, S.STOPPED, S.STARTING, S.SKIPPED}),
    S.RESTARTING: frozenset({S.READY, S.FATAL, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED, S.SKIPPED}),
    S.SKIPPED: frozenset({S.STARTING, S.STOPPED}),
    S.STOPPED: frozenset({S.STARTING, S.SKIPPED}),
    S.UNREACHABLE: frozenset({S.READY, S.STARTING, S.STOPPED}),
    # A task's end: run again by a later `up` or `restart`, stopped by `down` (no process).
    S.COMPLETED: frozenset({S.STARTING, S.STOPPED, S.SKIPPED}),
}
OBSERVED = frozenset({S.EXITED, S.UNSUPERVISED, S.RUNNING})

# No process serves the service and none is on its way: a held service's ports are closed
# (parked) so that clients are refused at once instead of waiting in a backlog nobody reads.
UNSERVED = frozenset({S.FATAL, S.STOPPED, S.FAILED, S.SKIPPED, S.EXITED, S.COMPLETED})
# A service the stack needs is gone for good: the stack is failed, not merely degraded.
BROKEN = frozenset({S.FATAL, S.FAILED})
# Up, but not as it should be: the stack is degraded (a completed task is as it should be).
NOT_UP = frozenset(set(Status) - {S.READY, S.STARTING, S.COMPLETED})
# States of a service that should have a live process.
UP = frozenset({S.READY, S.UNRESPONSIVE})


class WorkerStatus(StrEnum):
    """One worker of a held service, as supervisord runs its two slots."""

    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    DOWN = "down"


class IllegalMove(Exception):  # noqa: N818 — a programming error, named as what it is
    """A state change the machine does not allow: a bug in the caller."""


def check(service: str, before: Status, after: Status) -> None:
    """Raise IllegalMove unless `before -> after` is a move of the machine."""
    if after != before and after not in MOVES.get(before, frozenset()):
        raise IllegalMove(f"{service}: {before} -> {after} is not a legal move")


@dataclass(frozen=True)
class Event:
    """One thing that happened to a service (or one of its workers): a line of events.jsonl."""

    service: str
    action: str  # start ready crash backoff restart fatal liveness stop drain reload ...
    to: str
    before: str | None = None
    reason: str | None = None
    pid: int | None = None
    restarts: int = 0
    worker: str | None = None  # gateway:1
    slot: str | None = None  # gateway-1b
    time: float = 0.0

    def stamped(self) -> Event:
        """The event with the current wall-clock time, unless it has one."""
        if self.time:
            return self
        return Event(**{**asdict(self), "time": time.time()})

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of one event (`from` for the state it left)."""
        data = asdict(self)
        data["from"] = data.pop("before")
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        """An event read back from events.jsonl."""
        fields = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in fields}
        return cls(before=data.get("from"), **values)

    @property
    def who(self) -> str:
        """The worker (gateway:1) or the service the event is about."""
        return self.worker or self.service

    def describe(self) -> str:
        """One line: `gateway: ready after 40 ms (pid 12)`, `api: crash: exited with status 1`."""
        return f"{self.who}: {self.summary()}"

    def summary(self) -> str:
        """The line without whom it is about: `ready after 40 ms (pid 12)`."""
        line = self.action if self.action == self.to else f"{self.action} ({self.to})"
        if self.reason and self.reason != self.to:
            line += (" " if self.reason.startswith(("after ", "again ")) else ": ") + self.reason
        if self.pid:
            line += f" (pid {self.pid})"
        return line
