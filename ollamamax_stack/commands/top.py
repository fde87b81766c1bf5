"""`ollamamax top`: the live view of the running stack (Textual); `q` leaves the stack running."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry


def run_view(registry: Registry, ctx: typer.Context, refresh: float = 1.0) -> None:
    """Show the view until `q`; the stack is left as it is."""
    from ollamamax_stack.view.app import TopApp

    options = common.options(ctx)
    TopApp(registry, lambda: common.load_registry_for(options), refresh_every=refresh).run()


def top(
    ctx: typer.Context,
    refresh: Annotated[float, typer.Option(
        "--refresh", help="Seconds between looks at the stack.", min=0.2)] = 1.0,
) -> None:
    """Watch and steer the running stack: services and workers live, the selected one's log;
    keys r restart, s stop/start, l log, / filter, R reload, q quit, ? help."""
    from ollamamax_stack.commands.control import StackNotRunning
    from ollamamax_stack.supervise import state as st
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    if st.load(RunPaths(registry.run_dir)).phase == "down":
        raise StackNotRunning(f"the stack is not running (run dir {registry.run_dir}); "
                              "start it with `ollamamax up` or `ollamamax up --tui`")
    run_view(registry, ctx, refresh)
    typer.echo("the stack keeps running: `ollamamax top` to watch it again, "
               "`ollamamax down` to stop it")
