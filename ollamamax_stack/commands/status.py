"""`ollamamax status [--json] [--watch]`: each service's state and processes, from any terminal."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common

if TYPE_CHECKING:
    from rich.console import Console

EXIT_CODES = {"up": 0, "down": 3}  # anything else (degraded, failed, starting): 1
# A one-shot table's CPU column: the processes' use across this interval.
CPU_INTERVAL = 0.25


def _console() -> Console:
    from rich.console import Console

    # Off a terminal (pipes, CI logs) a line is never wrapped: greps find a reason whole.
    return Console(width=None if sys.stdout.isatty() else 1000)


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w", help="Redraw the table every --interval seconds until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between redraws of --watch.", min=0.1)] = 1.0,
) -> None:
    """Show each service's state, age, restarts, CPU and memory, and the supervisor's; exit 0
    up, 1 degraded, failed or starting, 3 down."""
    from ollamamax_stack.supervise import observe
    from ollamamax_stack.view import snapshot, table
    from ollamamax_stack.view.sample import Sampler

    registry = common.registry(ctx)
    if watch:
        _watch(ctx, interval)
    if as_json:
        current = observe.status(registry)
        state = current.state
        typer.echo(json.dumps({"stack": state.stack(),
                               "services": [s.as_status() for s in state.services.values()],
                               **current.supervision.as_status()}))
        raise typer.Exit(EXIT_CODES.get(state.stack(), 1))
    seen = snapshot.take(registry, Sampler(), over=CPU_INTERVAL)
    if seen.stack == "down":
        typer.echo(f"stack is down (run dir {registry.run_dir})")
    else:
        _console().print(table.render(registry.stack.name, seen))
    raise typer.Exit(EXIT_CODES.get(seen.stack, 1))


def _watch(ctx: typer.Context, interval: float) -> None:
    """The table redrawn in place, CPU over each interval, until Ctrl-C (exit 0)."""
    import signal
    import time

    from rich.live import Live

    from ollamamax_stack.view import snapshot, table
    from ollamamax_stack.view.listening import ListeningCache
    from ollamamax_stack.view.sample import Sampler

    # Ctrl-C (even where a background shell left SIGINT ignored) and SIGTERM end it, exit 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    registry = common.registry(ctx)
    sampler, listening = Sampler(), ListeningCache()
    seen = snapshot.take(registry, sampler, listening=listening)
    console = _console()
    if not console.is_terminal:  # a pipe or a log file: one table after another, never redrawn
        try:
            while True:
                console.print(table.render(registry.stack.name, seen))
                console.file.flush()
                time.sleep(interval)
                seen = snapshot.take(registry, sampler, listening=listening)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
    try:
        with Live(table.render(registry.stack.name, seen), console=console,
                  auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                seen = snapshot.take(registry, sampler, listening=listening)
                live.update(table.render(registry.stack.name, seen), refresh=True)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
