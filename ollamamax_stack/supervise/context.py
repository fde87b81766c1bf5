"""What the orchestrator, the workers and the watcher share: built once, complete, and narrow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.rpc import AsyncSupervisor

# (service name or "", message): progress the command layer prints.
Emit = Callable[[str, str], None]
# Apply a change to one service's persisted state.
Record = Callable[[str, st.Change], None]


def quiet(name: str, message: str) -> None:
    """An `Emit` that shows nothing."""


def recorder(paths: RunPaths, *, best_effort: bool,
             on_error: Callable[[OSError], None] | None = None) -> Record:
    """Write changes to state.json; best effort (down, the watcher) goes on without the disk."""
    def record(name: str, change: st.Change) -> None:
        if not best_effort:
            st.update_service(paths, name, change)
        elif (error := st.try_update_service(paths, name, change)) is not None and on_error:
            on_error(error)

    return record


@dataclass(frozen=True)
class Context:
    """One stack's registry, its supervisord's client, its run dir, and where changes go."""

    registry: Registry
    client: AsyncSupervisor
    record: Record
    emit: Emit = quiet
    timeout: float | None = None  # readiness timeout instead of each probe's own

    @property
    def paths(self) -> RunPaths:
        """The stack's run directory."""
        return RunPaths(self.registry.run_dir)


def context(registry: Registry, client: AsyncSupervisor, *, emit: Emit = quiet,
            timeout: float | None = None, best_effort: bool = False,
            on_error: Callable[[OSError], None] | None = None) -> Context:
    """A context whose changes go to the stack's state.json."""
    record = recorder(RunPaths(registry.run_dir), best_effort=best_effort, on_error=on_error)
    return Context(registry, client, record, emit, timeout)
