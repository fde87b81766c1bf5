"""The running stack's state, persisted in the run dir so every terminal sees the same thing."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from ollamamax_stack.supervise.machine import (
    BROKEN,
    NOT_UP,
    OBSERVED,
    Event,
    Status,
    check,
)
from ollamamax_stack.supervise.paths import RunPaths

Phase = Literal["starting", "running", "stopping", "down"]
StackState = Literal["up", "degraded", "failed", "starting", "down"]

# A change of one service's record: moves its state (returning the event) or only its facts.
Change = Callable[["ServiceState"], "Event | None"]

@dataclass
class ServiceState:
    """One service as the stack knows it."""

    name: str
    ports: dict[str, int]
    url: str
    external: bool = False
    optional: bool = False
    depends_on: list[str] = field(default_factory=list)
    state: Status = Status.STARTING  # moved only by `move`; `seen` for what status observes
    pid: int | None = None
    restarts: int = 0
    failures: int = 0  # consecutive crashes since it was last stable
    ready_ms: int | None = None
    started_at: float | None = None  # wall clock of its latest (re)start
    ready_at: float | None = None  # wall clock of the last time it became ready
    reason: str | None = None
    # A held service's workers as supervisord has them now: name, slot, pid, state.
    workers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """Whether it serves (or, external, answers) now."""
        return self.state == Status.READY

    def move(self, to: Status, reason: str | None = None, *, action: str | None = None,
             detail: str | None = None) -> Event:
        """Move to `to` if the machine allows it; the event that says so (`detail`: the
        event's words when they are not the state's reason)."""
        check(self.name, self.state, to)
        before, self.state, self.reason = self.state, to, reason
        return Event(service=self.name, action=action or to.value, to=to.value,
                     before=before.value, reason=detail or reason, pid=self.pid,
                     restarts=self.restarts).stamped()

    def seen(self, state: Status, reason: str | None) -> None:
        """What `status` found the processes doing: a view of this record, never saved."""
        if state not in OBSERVED | {Status.STOPPED}:
            raise ValueError(f"{self.name}: {state} is a state of the machine, not a view")
        self.state, self.reason = state, reason

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
        if any(s.state in NOT_UP for s in self.services.values()):
            return "degraded"
        if any(s.state == Status.STARTING for s in self.services.values()):
            return "starting"
        return "up"

    def reasons(self) -> list[str]:
        """Why the stack is not fully up, one line per service."""
        return [f"{s.name}: {s.reason or s.state}" for s in self.services.values()
                if s.state in NOT_UP]

    def as_dict(self) -> dict[str, Any]:
        """The JSON written to state.json (with each service's derived `ready`, for readers).

        Shallow on purpose: orjson encodes the lists and dicts inside, so a write of the whole
        file (once per change, during `up`) costs microseconds, not dataclasses.asdict's
        deep copy."""
        data = dict(vars(self))
        data["services"] = {name: {**vars(entry), "ready": entry.ready}
                            for name, entry in self.services.items()}
        return data


def load(paths: RunPaths) -> State:
    """The persisted state, or an empty (down) one."""
    try:
        return parse(paths.state.read_bytes())
    except OSError:
        return State()


def peek(paths: RunPaths) -> State:
    """The persisted state for reading only (never change it): the one this process last wrote,
    when the file still holds it, without parsing it again."""
    try:
        text = paths.state.read_bytes()
    except OSError:
        return State()
    return _written.peek(paths.state, text) or parse(text)


def parse(text: bytes) -> State:
    """A State from state.json's bytes; an empty (down) one for bytes that are not one."""
    try:
        raw = orjson.loads(text)
    except ValueError:
        return State()
    if not isinstance(raw, dict):
        return State()
    # Fields this version does not know (a newer or older ollamamax wrote the file) are dropped.
    services = {name: _entry(data) for name, data in raw.pop("services", {}).items()}
    known = set(State.__dataclass_fields__)
    return State(services=services, **{k: v for k, v in raw.items() if k in known})


_ENTRY_FIELDS = frozenset(ServiceState.__dataclass_fields__)


def _entry(data: dict[str, Any]) -> ServiceState:
    entry = ServiceState(**{k: v for k, v in data.items() if k in _ENTRY_FIELDS})
    try:
        entry.state = Status(entry.state)
    except ValueError:  # a state another version knew: nothing runs as far as we know
        entry.state, entry.reason = Status.STOPPED, f"unknown state {entry.state!r}"
    return entry


def save(paths: RunPaths, state: State) -> bytes:
    """Write atomically: readers never see half a file, and a failed write leaves no file.
    The bytes written."""
    staged = paths.state.with_suffix(f".{os.getpid()}.tmp")
    text = orjson.dumps(state.as_dict(), option=orjson.OPT_INDENT_2)
    try:
        staged.write_bytes(text)
        os.replace(staged, paths.state)
    except OSError as exc:
        try:
            staged.unlink()
        except OSError:
            pass
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(paths.state)) from exc
    return text


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


def update_service(paths: RunPaths, name: str, change: Change) -> Event | None:
    """Apply `change` to one service's persisted state (if the stack still knows it); the file
    is rewritten only when the record changed."""
    paths.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(paths.lock, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                text = paths.state.read_bytes()
            except OSError:
                text = b""
            state = _written.pop(paths.state, text) or parse(text)
            service = state.services.get(name)
            if service is None:
                return None
            before = dict(vars(service))
            event = change(service)
            if vars(service) != before:
                text = save(paths, state)
            _written.keep(paths.state, text, state)
            return event
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _LastWritten:
    """The State this process last wrote (or read) in `update_service`, kept while the file
    still holds exactly those bytes: `up` moves each of 60 services three times, and parsing
    the whole file again for each move cost more than the rest of the move. Comparing bytes,
    not a stat, so another process's write is never missed."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[bytes, State]] = {}

    def pop(self, path: os.PathLike[str], text: bytes) -> State | None:
        """The kept State when the file reads `text` as it did then; forgotten either way
        (a change that raises leaves it half applied)."""
        kept = self._kept.pop(os.fspath(path), None)
        return kept[1] if kept is not None and kept[0] == text and text else None

    def peek(self, path: os.PathLike[str], text: bytes) -> State | None:
        """The kept State when the file reads `text`, still kept (for reading only)."""
        kept = self._kept.get(os.fspath(path))
        return kept[1] if kept is not None and kept[0] == text and text else None

    def keep(self, path: os.PathLike[str], text: bytes, state: State) -> None:
        self._kept[os.fspath(path)] = (text, state)


_written = _LastWritten()
