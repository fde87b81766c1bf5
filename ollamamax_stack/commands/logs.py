"""`ollamamax logs [SERVICE...]`: services' logs interleaved by time, filtered, or followed."""

from __future__ import annotations

import re
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import UsageError

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry
    from ollamamax_stack.supervise.logquery import Query
    from ollamamax_stack.supervise.logs import LogLine

DEFAULT_LINES = 100  # per service, when no filter is given


def _bound(option: str, text: str | None, now: float) -> bytes | None:
    from ollamamax_stack.commands.events import since_time
    from ollamamax_stack.supervise.logstamp import stamp

    if text is None:
        return None
    try:
        return stamp(since_time(text, now))
    except UsageError as exc:
        raise UsageError(str(exc).replace("--since", option, 1)) from None


def query(since: str | None, until: str | None, grep: str | None, invert: bool) -> Query:
    """The filter of the command line; a bad time or pattern is a usage error naming it."""
    from ollamamax_stack.supervise.logquery import Query

    now = time.time()
    pattern = None
    if grep is not None:
        try:
            pattern = re.compile(grep.encode())
        except re.error as exc:
            raise UsageError(f"--grep {grep!r} is not a valid regular expression: {exc}"
                             ) from None
    elif invert:
        raise UsageError("--invert needs --grep PATTERN")
    return Query(since=_bound("--since", since, now), until=_bound("--until", until, now),
                 pattern=pattern, invert=invert)


class Printer:
    """Writes lines as `logs` shows them: prefixed and coloured, plain, or as JSON."""

    def __init__(self, registry: Registry, names: list[str], *, timestamps: bool,
                 prefix: bool, as_json: bool) -> None:
        from ollamamax_stack.supervise.logs import color

        self.timestamps, self.prefix, self.as_json = timestamps, prefix, as_json
        colors = {s.name: color(i) for i, s in enumerate(registry.active)}
        width = max(len(n) for n in names) if names else 0
        colour = sys.stdout.isatty()
        self.tags = {n: (typer.style(f"{n:<{width}} |", fg=colors.get(n, "white")) if colour
                         else f"{n:<{width}} |") + " " for n in names}
        self.out = sys.stdout

    def line(self, line: LogLine) -> None:
        """Print one line."""
        when = (line.stamp or b"").decode()
        if self.as_json:
            import orjson

            self.out.write(orjson.dumps({"time": when or None, "service": line.service,
                                         "line": line.decoded()}).decode() + "\n")
            return
        head = self.tags[line.service] if self.prefix else ""
        if self.timestamps:
            head += f"{when or '-':<27} "
        self.out.write(f"{head}{line.decoded()}\n")

    def flush(self) -> None:
        """Push what is written out (after each batch when following)."""
        self.out.flush()


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
    from ollamamax_stack.supervise.logquery import read
    from ollamamax_stack.supervise.logs import Follower
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    names = list(services or [s.name for s in registry.managed])
    for name in names:
        registry.service(name)
    chosen = query(since, until, grep, invert)
    filtered = since is not None or until is not None or grep is not None
    count = lines if lines is not None else (-1 if filtered else DEFAULT_LINES)
    paths = RunPaths(registry.run_dir)
    printer = Printer(registry, names, timestamps=timestamps, prefix=not no_prefix,
                      as_json=as_json)
    follower = Follower()
    if follow:  # from here on: what is written while the history prints is not lost
        for name in names:
            follower.add(name, paths.log(name))
    try:
        for line in read([(n, paths.log(n)) for n in names], chosen, count,
                         follower.offsets() if follow else None):
            printer.line(line)
        printer.flush()
        if not follow:
            return
        while True:
            for line in follower.poll_lines():
                when = line.stamp or b""
                if chosen.until is not None and when > chosen.until:
                    continue
                if chosen.keeps(line.text):
                    printer.line(line)
            printer.flush()
            time.sleep(0.1)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:  # `logs | head`: the reader is gone
        sys.stderr.close()
        raise typer.Exit(0) from None
    finally:
        follower.close()
