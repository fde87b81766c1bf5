"""`ollamamax logs [SERVICE...] [-f] [-n N]`: services' output with coloured prefixes."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.output import line_printer


def logs(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(
        help="Services (default: all).", show_default=False)] = None,
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
    show = line_printer(names, registry)
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
