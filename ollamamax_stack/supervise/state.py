"""The running stack's state, persisted in the run dir so every terminal sees the same thing."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ollamamax_stack.supervise.paths import RunPaths

Phase = Literal["starting", "running", "stopping", "down"]
StackState = Literal["up", "degraded", "failed", "starting", "down"]

# A service's state: where it is in its life, as `status` shows it.
READY = "ready"
STARTING = "starting"
RESTARTING = "restarting"  # crashed or failed liveness; waiting out its backoff or readiness
FATAL = "fatal"  # gave up after the restart limit
FAILED = "failed"  # did not start (exited, or missed its readiness timeout) during `up`
UNREACHABLE = "unreachable"  # an external service that does not answer
SKIPPED = "skipped"  # not started: a dependency failed, or its program is missing
STOPPED = "stopped"  # stopped on request
EXITED = "exited"  # its process is gone and nobody is restarting it
UNRESPONSIVE = "unresponsive"  # runs, but its latest liveness probe failed
UNSUPERVISED = "unsupervised"  # runs, but supervisord is gone: nobody would restart it
RUNNING = "running"  # runs under a supervisord that does not answer: readiness unknown

Change = Callable[["ServiceState"], None]

# No process serves the service and none is on its way: a held service's ports are closed
# (parked) so that clients are refused at once instead of waiting in a backlog nobody reads.
UNSERVED = frozenset({FATAL, STOPPED, FAILED, SKIPPED, EXITED})
# A service the stack needs is gone for good: the stack is failed, not merely degraded.
BROKEN = frozenset({FATAL, FAILED})

_NOT_UP = {RESTARTING, FATAL, FAILED, UNREACHABLE, SKIPPED, STOPPED, EXITED, UNRESPONSIVE,
           UNSUPERVISED, RUNNING}


@dataclass
class ServiceState:
    """One service as the stack knows it."""

    name: str
    ports: dict[str, int]
    url: str
    external: bool = False
    optional: bool = False
    depends_on: list[str] = field(default_factory=list)
    state: str = STARTING
    ready: bool = False
    pid: int | None = None
    restarts: int = 0
    failures: int = 0  # consecutive crashes since it was last stable
    ready_ms: int | None = None
    started_at: float | None = None  # wall clock of its latest (re)start
    ready_at: float | None = None  # wall clock of the last time it became ready
    reason: str | None = None
    # A held service's workers as supervisord has them now: name, slot, pid, state.
    workers: list[dict[str, Any]] = field(default_factory=list)

    def as_status(self) -> dict[str, Any]:
        """The `status --json` shape of one service."""
        shown = {"name": self.name, "state": self.state, "ready": self.ready, "pid": self.pid,
                 "ports": self.ports, "restarts": self.restarts, "url": self.url,
                 "reason": self.reason, "ready_ms": self.ready_ms}
        if self.workers:
            shown["workers"] = self.workers
        return shown


@dataclass
class State:
    """Everything `status`, `down` and the watcher need to know about a running stack."""

    phase: Phase = "down"
    supervisord_pid: int | None = None
    socket: str | None = None
    watcher_pid: int | None = None
    config: str | None = None
    offset: int = 0
    profile: str | None = None
    services: dict[str, ServiceState] = field(default_factory=dict)

    def stack(self) -> StackState:
        """up, degraded, failed (a service it needs is fatal or failed), starting or down."""
        if self.phase in ("down", "stopping"):
            return "down"
        if self.phase == "starting":
            return "starting"
        if any(s.state in BROKEN and not s.optional for s in self.services.values()):
            return "failed"
        if any(s.state in _NOT_UP for s in self.services.values()):
            return "degraded"
        if any(s.state == STARTING for s in self.services.values()):
            return "starting"
        return "up"

    def reasons(self) -> list[str]:
        """Why the stack is not fully up, one line per service."""
        return [f"{s.name}: {s.reason or s.state}" for s in self.services.values()
                if s.state in _NOT_UP]

    def as_dict(self) -> dict[str, Any]:
        """The JSON written to state.json."""
        return asdict(self)


def load(paths: RunPaths) -> State:
    """The persisted state, or an empty (down) one."""
    try:
        raw = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return State()
    # Fields this version does not know (a newer or older ollamamax wrote the file) are dropped.
    fields = set(ServiceState.__dataclass_fields__)
    services = {name: ServiceState(**{k: v for k, v in data.items() if k in fields})
                for name, data in raw.pop("services", {}).items()}
    known = set(State.__dataclass_fields__)
    return State(services=services, **{k: v for k, v in raw.items() if k in known})


def save(paths: RunPaths, state: State) -> None:
    """Write atomically: readers never see half a file, and a failed write leaves no file."""
    staged = paths.state.with_suffix(f".{os.getpid()}.tmp")
    try:
        staged.write_text(json.dumps(state.as_dict(), indent=1), encoding="utf-8")
        os.replace(staged, paths.state)
    except OSError as exc:
        try:
            staged.unlink()
        except OSError:
            pass
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(paths.state)) from exc


@contextmanager
def locked(paths: RunPaths) -> Iterator[State]:
    """Read-modify-write under a file lock shared by `up`, the watcher and other commands."""
    paths.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(paths.lock, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = load(paths)
            yield state
            save(paths, state)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_service(paths: RunPaths, name: str, change: Callable[[ServiceState], None]) -> None:
    """Apply `change` to one service's persisted state (if the stack still knows it)."""
    with locked(paths) as state:
        service = state.services.get(name)
        if service is not None:
            change(service)


def try_update_service(paths: RunPaths, name: str, change: Change) -> OSError | None:
    """`update_service` for callers that must go on without the disk (down, the watcher)."""
    try:
        update_service(paths, name, change)
    except OSError as exc:
        return exc
    return None
