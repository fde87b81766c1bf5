"""`ollamamax up|down|status|logs|start|stop|restart`: the stack on supervisord, like compose."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import OllamamaxError

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry

EXIT_UP, EXIT_NOT_UP, EXIT_DOWN = 0, 1, 3
ServiceNames = Annotated[list[str] | None, typer.Argument(help="Services (default: all).",
                                                          show_default=False)]


class StackNotRunning(OllamamaxError):
    """A command that needs the running stack found none (exit 1)."""


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root app."""
    for command in (up, down, status, logs, start, stop, restart):
        app.command()(command)


def _prefix_width(names: list[str]) -> int:
    return max([len(n) for n in names] + [9])


def _printer(width: int, colors: dict[str, str]) -> Callable[[str, str], None]:
    lock = threading.Lock()

    def show(name: str, line: str) -> None:
        label = name or "ollamamax"
        tag = typer.style(f"{label:<{width}} |", fg=colors.get(label, "white"), bold=not name)
        if not name and line.startswith("warning:"):
            line = typer.style(line, fg="yellow")
        with lock:
            typer.echo(f"{tag} {line}")

    return show


def _colors(names: list[str]) -> dict[str, str]:
    from ollamamax_stack.supervise.logs import color

    return {name: color(i) for i, name in enumerate(names)}


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def up(
    ctx: typer.Context,
    services: ServiceNames = None,
    detach: Annotated[bool, typer.Option("--detach", "-d",
                                         help="Return once the stack is up.")] = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Readiness timeout per service in seconds (default: the registry's).",
        min=0.1)] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip the pre-flight checks.")] = (
        False),
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="When a service fails to start, start the rest (degraded).")] = False,
) -> None:
    """Start the stack (or SERVICEs and what they need) in dependency order, gated on readiness."""
    from ollamamax_stack.notify import notify
    from ollamamax_stack.supervise import lifecycle
    from ollamamax_stack.supervise.logs import Follower
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    names = list(services or [])
    everyone = [s.name for s in registry.active]
    show = _printer(_prefix_width(everyone), _colors(everyone))
    paths = RunPaths(registry.run_dir)
    follower: Follower | None = None
    stop_following = threading.Event()
    if not detach:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise_interrupt)
        paths.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        follower = Follower()
        for service in registry.managed:
            follower.add(service.name, paths.log(service.name))
        follower.add("", paths.watcher_log)
        threading.Thread(target=_follow, args=(follower, show, stop_following),
                         daemon=True).start()
    try:
        result = lifecycle.up(registry, names, timeout=timeout, keep_going=keep_going,
                              check=not no_check, emit=show)
    except KeyboardInterrupt:
        _stop_foreground(registry, show, stop_following)
        raise typer.Exit(0) from None
    except lifecycle.PreflightFailed as failed:
        stop_following.set()
        for finding in failed.findings:
            typer.echo(f"ollamamax: error: {finding.message}", err=True)
        typer.echo("ollamamax: nothing was started", err=True)
        raise typer.Exit(1) from None
    if not result.ok:
        stop_following.set()
        for name, lines in result.logs.items():
            typer.echo(f"--- last {len(lines)} log lines of {name} ---", err=True)
            for line in lines:
                typer.echo(f"{name} | {line}", err=True)
        for name in result.failed:
            typer.echo(f"ollamamax: error: {name} {result.outcomes[name].reason}", err=True)
        if not keep_going:
            typer.echo("ollamamax: the start was stopped; everything it started was stopped",
                       err=True)
            raise typer.Exit(1)
    _print_table(registry, result.state)
    if result.ok:
        notify("READY=1", f"STATUS={result.state.stack()}")
    if detach:
        raise typer.Exit(EXIT_UP if result.state.stack() == "up" else EXIT_NOT_UP)
    try:
        while lifecycle.status(registry).phase != "down":
            time.sleep(0.5)
        show("", "the stack was brought down elsewhere")
        stop_following.set()
    except KeyboardInterrupt:
        _stop_foreground(registry, show, stop_following)
    raise typer.Exit(0)


def _follow(follower: object, show: Callable[[str, str], None], done: threading.Event) -> None:
    from ollamamax_stack.supervise.logs import Follower

    assert isinstance(follower, Follower)
    while not done.is_set():
        for name, line in follower.poll():
            show(name, line)
        done.wait(0.05)
    for name, line in follower.poll():
        show(name, line)


def _stop_foreground(registry: Registry, show: Callable[[str, str], None],
                     following: threading.Event) -> None:
    from ollamamax_stack.supervise import lifecycle

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the ordered stop must not be cut short
    show("", "stopping in reverse dependency order")
    result = lifecycle.down(registry, emit=show)
    following.set()
    _report_down(result, show)


def _report_down(result: object, show: Callable[[str, str], None]) -> None:
    from ollamamax_stack.supervise.lifecycle import DownResult

    assert isinstance(result, DownResult)
    if result.ended:
        show("", f"ended {result.ended} stray process(es) of the stack")
    for line in result.leftovers:
        show("", typer.style(f"could not end {line}", fg="red"))
    for line in result.busy_ports:
        show("", typer.style(line, fg="red"))
    if result.leftovers or result.busy_ports:
        raise typer.Exit(1)
    show("", "stack is down: no process left, every port free")


def _print_table(registry: Registry, state: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from ollamamax_stack.supervise.state import READY, State

    assert isinstance(state, State)
    table = Table(title=f"{registry.stack.name}: {state.stack()}")
    for column in ("service", "state", "ports", "URL", "pid", "ready after"):
        table.add_column(column)
    for entry in state.services.values():
        ports = ", ".join(str(p) if n == "main" else f"{n}={p}" for n, p in entry.ports.items())
        ready = f"{entry.ready_ms} ms" if entry.ready and entry.ready_ms is not None else "-"
        label = entry.state if entry.state == READY else f"{entry.state}: {entry.reason or ''}"
        table.add_row(entry.name, label, ports, entry.url,
                      str(entry.pid) if entry.pid else ("external" if entry.external else "-"),
                      ready, style=None if entry.ready else "yellow")
    import sys

    # Off a terminal (pipes, CI logs) rich would cut URLs at 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def down(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds between SIGTERM and SIGKILL.", min=0)] = 10.0,
) -> None:
    """Stop the stack in reverse dependency order and check nothing of it is left."""
    from ollamamax_stack.supervise import lifecycle

    registry = common.registry(ctx)
    show = _printer(_prefix_width([s.name for s in registry.active]),
                    _colors([s.name for s in registry.active]))
    result = lifecycle.down(registry, timeout=timeout, emit=show)
    if not result.was_running and not result.busy_ports:
        typer.echo(f"nothing to stop: no stack runs from {registry.run_dir}")
        raise typer.Exit(0)
    _report_down(result, show)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each service's state; exit 0 up, 1 degraded or starting, 3 down."""
    from ollamamax_stack.supervise import lifecycle

    registry = common.registry(ctx)
    state = lifecycle.status(registry)
    stack = state.stack()
    if as_json:
        typer.echo(json.dumps({"stack": stack,
                               "services": [s.as_status() for s in state.services.values()]}))
    elif stack == "down":
        typer.echo(f"stack is down (run dir {registry.run_dir})")
    else:
        _print_table(registry, state)
        for reason in state.reasons():
            typer.echo(f"degraded: {reason}")
    raise typer.Exit({"up": EXIT_UP, "down": EXIT_DOWN}.get(stack, EXIT_NOT_UP))


def logs(
    ctx: typer.Context,
    services: ServiceNames = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = (
        False),
    lines: Annotated[int, typer.Option("-n", "--lines",
                                       help="Lines per service from the end (-1: all).")] = 100,
) -> None:
    """Print services' logs, each line prefixed with its coloured service name."""
    from ollamamax_stack.supervise.logs import Follower, tail
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    names = list(services or [s.name for s in registry.managed])
    for name in names:
        registry.service(name)
    paths = RunPaths(registry.run_dir)
    show = _printer(_prefix_width(names), _colors([s.name for s in registry.active]))
    follower = Follower()
    for name in names:
        for line in tail(paths.log(name), lines):
            show(name, line)
        follower.add(name, paths.log(name))
    if not follow:
        return
    try:
        while True:
            for name, line in follower.poll():
                show(name, line)
            time.sleep(0.1)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _running(registry: Registry) -> object:
    from ollamamax_stack.supervise import daemon
    from ollamamax_stack.supervise.paths import RunPaths

    client = daemon.connect(RunPaths(registry.run_dir))
    if client is None:
        raise StackNotRunning(f"the stack is not running (run dir {registry.run_dir}); "
                              "start it with `ollamamax up`")
    return client


def _orchestrator(ctx: typer.Context, names: list[str]) -> tuple[Registry, object]:
    from ollamamax_stack.supervise.orchestrator import Orchestrator
    from ollamamax_stack.supervise.rpc import Supervisor

    registry = common.registry(ctx)
    for name in names:
        if registry.service(name).external:
            raise OllamamaxError(f"{name} is external: the stack does not start or stop it")
    client = _running(registry)
    assert isinstance(client, Supervisor)
    show = _printer(_prefix_width(names), _colors([s.name for s in registry.active]))
    return registry, Orchestrator(registry, client, emit=show)


def _start(registry: Registry, orchestrator: object, names: list[str]) -> None:
    from ollamamax_stack.supervise import lifecycle
    from ollamamax_stack.supervise.orchestrator import Orchestrator

    assert isinstance(orchestrator, Orchestrator)
    import asyncio  # only commands that start services pay for it

    outcomes = asyncio.run(orchestrator.start(names, keep_going=True))
    lifecycle.ensure_watcher(registry)
    failed = [n for n, o in outcomes.items() if not o.ready and not registry.services[n].optional]
    for name in failed:
        typer.echo(f"ollamamax: error: {name} {outcomes[name].reason}", err=True)
    if failed:
        raise typer.Exit(1)


def start(ctx: typer.Context, services: Annotated[list[str], typer.Argument()]) -> None:
    """Start SERVICEs (and what they need) on the running stack; waits for readiness."""
    registry, orchestrator = _orchestrator(ctx, services)
    _start(registry, orchestrator, services)


def stop(ctx: typer.Context, services: Annotated[list[str], typer.Argument()]) -> None:
    """Stop SERVICEs on the running stack (they stay stopped until started)."""
    from ollamamax_stack.supervise.orchestrator import Orchestrator

    _, orchestrator = _orchestrator(ctx, services)
    assert isinstance(orchestrator, Orchestrator)
    orchestrator.stop(services)


def restart(ctx: typer.Context, services: Annotated[list[str], typer.Argument()]) -> None:
    """Restart SERVICEs on the running stack; waits until they are ready again."""
    from ollamamax_stack.supervise.orchestrator import Orchestrator

    registry, orchestrator = _orchestrator(ctx, services)
    assert isinstance(orchestrator, Orchestrator)
    orchestrator.stop(services)
    _start(registry, orchestrator, services)
