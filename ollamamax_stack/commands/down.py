"""`ollamamax down`: reverse-order stop, then proof that nothing of the stack is left."""

from __future__ import annotations

from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.output import line_printer, report_down


def down(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds between SIGTERM and SIGKILL.", min=0)] = 10.0,
) -> None:
    """Stop the stack in reverse dependency order and check nothing of it is left."""
    from ollamamax_stack.supervise import lifecycle

    registry = common.registry(ctx)
    show = line_printer([s.name for s in registry.active], registry)
    result = lifecycle.down(registry, timeout=timeout, emit=show)
    if not result.was_running and not result.busy_ports:
        typer.echo(f"nothing to stop: no stack runs from {registry.run_dir}")
        raise typer.Exit(0)
    report_down(result, show)
