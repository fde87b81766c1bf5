"""`ollamamax start|stop|restart SERVICE...` on the running stack."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.output import line_printer
from ollamamax_stack.errors import OllamamaxError, UsageError

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry
    from ollamamax_stack.supervise.orchestrator import Orchestrator

Services = Annotated[list[str], typer.Argument(help="Services of the running stack.")]


class StackNotRunning(OllamamaxError):
    """A command that needs the running stack found none (exit 1)."""


class NotRunnable(OllamamaxError):
    """`run`'s command cannot be run: 127 not found, 126 not executable (as a shell says)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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


def _every_service(registry: Registry) -> list[str]:
    """The services the stack runs now, dependencies first (`restart` with no names)."""
    from ollamamax_stack.registry.graph import start_layers
    from ollamamax_stack.supervise import state as st
    from ollamamax_stack.supervise.machine import Status
    from ollamamax_stack.supervise.orchestrator import dependencies
    from ollamamax_stack.supervise.paths import RunPaths

    recorded = st.load(RunPaths(registry.run_dir)).services
    return [name for layer in start_layers(dependencies(registry)) for name in layer
            if name in recorded and not recorded[name].external
            and recorded[name].state != Status.STOPPED]


def restart(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(
        help="Services or workers (gateway:1); none: every service.", show_default=False)] = None,
    every: Annotated[bool, typer.Option("--all", help="Every running service, dependencies "
                                        "first (the same as no names).")] = False,
) -> None:
    """Restart SERVICEs (or one worker: gateway:1), or all in dependency order; held services
    roll without refusing anyone."""
    import asyncio

    from ollamamax_stack.supervise import lifecycle, rolling

    if every and services:
        raise UsageError("restart: give service names or --all, not both")
    names = list(services or [])
    registry, orchestrator = _orchestrator(ctx, names)
    if not names:
        names = _every_service(registry)
    with _locked(registry):
        outcomes = asyncio.run(rolling.restart(orchestrator, names))
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


def run(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="The service whose environment CMD gets.")],
    command: Annotated[list[str], typer.Argument(
        help="The command and its arguments (after `--`).", metavar="-- CMD...")],
) -> None:
    """Run CMD with SERVICE's environment (PORT, HOST, the stack's URLs), as `honcho run`; exit
    with CMD's exit code."""
    import os
    import signal
    import subprocess

    from ollamamax_stack.registry.environ import service_environment

    if command[:1] == ["--"]:  # kept by click when options after SERVICE are left unparsed
        command = command[1:]
    if not command:
        raise UsageError(f"run {service}: give the command to run: "
                         f"`ollamamax run {service} -- CMD ARGS...`")
    registry = common.registry(ctx)
    env = {**os.environ, **service_environment(registry, registry.service(service))}
    # Ctrl-C reaches CMD (same process group): it decides how to end, and we report its code.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = subprocess.run(command, env=env).returncode
    except FileNotFoundError:
        raise NotRunnable(f"run: {command[0]}: command not found", 127) from None
    except PermissionError:
        raise NotRunnable(f"run: {command[0]}: permission denied", 126) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    raise typer.Exit(code if code >= 0 else 128 - code)
