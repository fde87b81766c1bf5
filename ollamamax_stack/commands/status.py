"""`ollamamax status [--json]`: each service's state, from any terminal."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.output import print_table

EXIT_CODES = {"up": 0, "down": 3}  # anything else (degraded, failed, starting): 1


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each service's state and the supervisor's; exit 0 up, 1 degraded, failed or
    starting, 3 down."""
    from ollamamax_stack.supervise import observe

    registry = common.registry(ctx)
    current = observe.status(registry)
    state = current.state
    stack = state.stack()
    if as_json:
        typer.echo(json.dumps({"stack": stack,
                               "services": [s.as_status() for s in state.services.values()],
                               **current.supervision.as_status()}))
    elif stack == "down":
        typer.echo(f"stack is down (run dir {registry.run_dir})")
    else:
        print_table(registry, state)
        typer.echo(current.supervision.describe())
        for reason in state.reasons():
            typer.echo(f"{'failed' if stack == 'failed' else 'degraded'}: {reason}")
    raise typer.Exit(EXIT_CODES.get(stack, 1))
