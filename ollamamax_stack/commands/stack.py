"""The stack commands, one module each, like `docker compose up|down|ps|logs|start|stop`."""

from __future__ import annotations

import typer

from ollamamax_stack.commands.control import reload, restart, run, start, stop
from ollamamax_stack.commands.down import down
from ollamamax_stack.commands.events import events
from ollamamax_stack.commands.logs import logs
from ollamamax_stack.commands.status import status
from ollamamax_stack.commands.top import top
from ollamamax_stack.commands.up import up


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root app."""
    for command in (up, down, status, logs, events, start, stop, restart, reload):
        app.command()(command)
    # CMD's own options are CMD's: nothing after SERVICE is parsed as ours.
    app.command(context_settings={"allow_interspersed_args": False,
                                  "ignore_unknown_options": True})(run)
    app.command()(top)
