"""`ollamamax start|stop|restart SERVICE...` on the running stack."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.output import line_printer
from ollamamax_stack.errors import OllamamaxError

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry
    from ollamamax_stack.supervise.orchestrator import Orchestrator

Services = Annotated[list[str], typer.Argument(help="Services of the running stack.")]


class StackNotRunning(OllamamaxError):
    """A command that needs the running stack found none (exit 1)."""


def _orchestrator(ctx: typer.Context, names: list[str]) -> tuple[Registry, Orchestrator]:
    from ollamamax_stack.handoff.slots import parse_worker
    from ollamamax_stack.supervise import daemon
    from ollamamax_stack.supervise.context import context
    from ollamamax_stack.supervise.orchestrator import Orchestrator
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    for name in [parse_worker(n)[0] for n in names]:
        if registry.service(name).external:
            raise OllamamaxError(f"{name} is external: the stack does not start or stop it")
    client = daemon.connect(RunPaths(registry.run_dir))
    if client is None:
        raise StackNotRunning(f"the stack is not running (run dir {registry.run_dir}); "
                              "start it with `ollamamax up`")
    return registry, Orchestrator(context(registry, client.asynchronous(),
                                          emit=line_printer(names, registry)))


def _start(registry: Registry, orchestrator: Orchestrator, names: list[str]) -> None:
    import asyncio  # only commands that start services pay for it

    from ollamamax_stack.supervise import lifecycle

    outcomes = asyncio.run(orchestrator.start(names, keep_going=True))
    lifecycle.ensure_watcher(registry)
    failed = [n for n, o in outcomes.items() if not o.ready and not registry.services[n].optional]
    for name in failed:
        typer.echo(f"ollamamax: error: {name} {outcomes[name].reason}", err=True)
    if failed:
        raise typer.Exit(1)


def _locked(registry: Registry) -> AbstractContextManager[None]:
    """The run dir's lock: a start or stop never interleaves with an `up` or `down`."""
    from ollamamax_stack.supervise.lock import stack_lock
    from ollamamax_stack.supervise.paths import RunPaths

    return stack_lock(RunPaths(registry.run_dir), create=False)


def start(ctx: typer.Context, services: Services) -> None:
    """Start SERVICEs (and what they need) on the running stack; waits for readiness."""
    registry, orchestrator = _orchestrator(ctx, services)
    with _locked(registry):
        _start(registry, orchestrator, services)


def stop(ctx: typer.Context, services: Services) -> None:
    """Stop SERVICEs on the running stack (they stay stopped until started)."""
    import asyncio

    from ollamamax_stack.supervise import holder

    registry, orchestrator = _orchestrator(ctx, services)
    with _locked(registry):
        asyncio.run(orchestrator.stop(services))
        for name, problem in holder.park_stopped(registry, services).items():
            orchestrator.emit(name, f"warning: its port stays open: {problem}")


def restart(ctx: typer.Context, services: Services) -> None:
    """Restart SERVICEs (or one worker: gateway:1); held services roll without refusing anyone."""
    import asyncio

    from ollamamax_stack.supervise import lifecycle, rolling

    registry, orchestrator = _orchestrator(ctx, services)
    with _locked(registry):
        outcomes = asyncio.run(rolling.restart(orchestrator, services))
        lifecycle.ensure_watcher(registry)
    failed = [n for n, o in outcomes.items() if not o.ready]
    for name in failed:
        typer.echo(f"ollamamax: error: {name} {outcomes[name].reason}", err=True)
    if failed:
        raise typer.Exit(1)


def reload(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Also move ports of running services "
                                        "(their old port is closed).")] = False,
) -> None:
    """Re-read the registry; restart (rolling, one worker at a time) only what changed."""
    import asyncio

    from ollamamax_stack.supervise import lifecycle, rolling

    registry, orchestrator = _orchestrator(ctx, [])
    show = orchestrator.emit
    with _locked(registry):
        # The watcher knows the registry as it was: it must not restart workers being removed.
        lifecycle.stop_watcher(registry)
        try:
            found = asyncio.run(rolling.reload(registry, orchestrator, force=force))
        finally:
            lifecycle.ensure_watcher(registry)
    if not (found.changed or found.added or found.removed):
        show("", "nothing changed")
