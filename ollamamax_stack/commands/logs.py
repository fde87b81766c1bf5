"""`ollamamax logs [SERVICE...]`: services' logs interleaved by time, filtered, or followed."""

from __future__ import annotations

from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.logs_run import DEFAULT_LINES, LogsOptions, run_logs


def logs(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(
        help="Services (default: all).", show_default=False)] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new lines (across rotations and restarts).")] = (
        False),
    lines: Annotated[int | None, typer.Option(
        "-n", "--lines", help=f"Lines per service from the end (-1: all; default "
        f"{DEFAULT_LINES}, or all with --since/--until/--grep).", show_default=False)] = None,
    timestamps: Annotated[bool, typer.Option(
        "--timestamps", "-t", help="Show each line's time (UTC, as stamped on arrival).")] = (
        False),
    since: Annotated[str | None, typer.Option(
        "--since", help="Lines since T: 30s, 10m, 2h, or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Lines up to T: 30s, 10m, 2h ago, or an ISO time.")] = None,
    grep: Annotated[str | None, typer.Option(
        "--grep", "-g", help="Only lines matching this regular expression.")] = None,
    invert: Annotated[bool, typer.Option(
        "--invert", "-v", help="With --grep: only lines that do not match.")] = False,
    no_prefix: Annotated[bool, typer.Option(
        "--no-prefix", help="Print the lines without the service's name.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON object per line: time, service, line.")] = False,
) -> None:
    """Print services' logs interleaved by time, each line prefixed with its service's name."""
    options = LogsOptions(services=list(services or []), follow=follow, lines=lines,
                          timestamps=timestamps, since=since, until=until, grep=grep,
                          invert=invert, no_prefix=no_prefix, as_json=as_json)
    code = run_logs(common.registry(ctx), options)
    if code:
        raise typer.Exit(code)
