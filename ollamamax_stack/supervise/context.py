"""What the orchestrator, the workers and the watcher share: built once, complete, and narrow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import events
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import Event
from ollamamax_stack.supervise.outcome import pid_alive
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.probes import CheckMaker, make_check
from ollamamax_stack.supervise.rpc import AsyncSupervisor, SupervisorClient

# (service name or "", message): progress the command layer prints.
Emit = Callable[[str, str], None]
# Apply a change to one service's persisted state, and publish the event it made.
Record = Callable[[str, st.Change], None]
# Publish an event that changes no record (a backoff wait, a worker's slot).
Publish = Callable[[Event], None]


def quiet(name: str, message: str) -> None:
    """An `Emit` that shows nothing."""


def publisher(paths: RunPaths, *, best_effort: bool,
              on_error: Callable[[OSError], None] | None = None) -> Publish:
    """Append events to the run dir's events.jsonl; best effort goes on without the disk."""
    def publish(event: Event) -> None:
        try:
            events.append(paths.run_dir, event)
        except OSError as exc:
            if not best_effort:
                raise
            if on_error is not None:
                on_error(exc)

    return publish


def recorder(paths: RunPaths, publish: Publish, *, best_effort: bool,
             on_error: Callable[[OSError], None] | None = None) -> Record:
    """Write changes to state.json; best effort (down, the watcher) goes on without the disk."""
    def record(name: str, change: st.Change) -> None:
        try:
            event = st.update_service(paths, name, change)
        except OSError as exc:
            if not best_effort:
                raise
            if on_error is not None:
                on_error(exc)
            return
        if event is not None:
            publish(event)

    return record


@dataclass(frozen=True)
class Context:
    """One stack's registry, its supervisord's client, its run dir, and where changes go."""

    registry: Registry
    client: SupervisorClient
    record: Record
    publish: Publish
    emit: Emit = quiet
    timeout: float | None = None  # readiness timeout instead of each probe's own
    checks: CheckMaker = make_check  # the probes (an in-memory double's in the policy tests)
    alive: Callable[[int], bool] = pid_alive

    @property
    def paths(self) -> RunPaths:
        """The stack's run directory."""
        return RunPaths(self.registry.run_dir)


def context(registry: Registry, client: AsyncSupervisor, *, emit: Emit = quiet,
            timeout: float | None = None, best_effort: bool = False,
            on_error: Callable[[OSError], None] | None = None) -> Context:
    """A context whose changes go to the stack's state.json, its events to events.jsonl and,
    as progress lines, to `emit`."""
    paths = RunPaths(registry.run_dir)
    written = publisher(paths, best_effort=best_effort, on_error=on_error)

    def publish(event: Event) -> None:
        written(event)
        emit(event.who, event.summary())

    record = recorder(paths, publish, best_effort=best_effort, on_error=on_error)
    return Context(registry, client, record, publish, emit, timeout)
