"""`ollamamax events [--json] [--since T]`: the stack's events live, as `docker compose events`."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.since import since_time


def events(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    since: Annotated[str | None, typer.Option(
        "--since", help="Start with the events since T (30, 5m, 2h, or an ISO time); "
        "default: only new ones.")] = None,
    no_follow: Annotated[bool, typer.Option(
        "--no-follow", help="Print the events so far and exit.")] = False,
) -> None:
    """Stream the stack's events (starts, readiness, crashes, backoff, restarts, fatal...)."""
    from ollamamax_stack.supervise import events as log
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    run_dir = RunPaths(registry.run_dir).run_dir
    now = time.time()
    start = since_time(since, now) if since is not None else now
    stream = log.read(run_dir, start) if no_follow else log.follow(run_dir, start)
    try:
        for event in stream:
            if as_json:
                typer.echo(json.dumps(event.as_json(), separators=(",", ":")))
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
                typer.echo(f"{stamp} {event.describe()}")
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
