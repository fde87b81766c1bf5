"""`logs` without typer: options in, lines out; the fast path (fastpath.py) calls it directly.

`ollamamax logs --grep X` over large logs is meant to stay near `grep X`: a second spent
importing the CLI would be most of its time, so this module imports only what reading needs.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ollamamax_stack.errors import UsageError

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry
    from ollamamax_stack.supervise.logquery import Query
    from ollamamax_stack.supervise.logs import LogLine

DEFAULT_LINES = 100  # per service, when no filter is given
# The ANSI colours of supervise/logs.py's COLORS, as typer.style writes them for `up`.
_ANSI = {"cyan": 36, "magenta": 35, "green": 32, "yellow": 33, "blue": 34, "white": 37,
         "bright_cyan": 96, "bright_magenta": 95, "bright_green": 92, "bright_yellow": 93,
         "bright_blue": 94}


@dataclass(frozen=True)
class LogsOptions:
    """The options of `ollamamax logs`."""

    services: list[str] = field(default_factory=list)
    follow: bool = False
    lines: int | None = None
    timestamps: bool = False
    since: str | None = None
    until: str | None = None
    grep: str | None = None
    invert: bool = False
    no_prefix: bool = False
    as_json: bool = False


def _bound(option: str, text: str | None, now: float) -> bytes | None:
    from ollamamax_stack.commands.since import since_time
    from ollamamax_stack.supervise.logstamp import stamp

    if text is None:
        return None
    try:
        return stamp(since_time(text, now))
    except UsageError as exc:
        raise UsageError(str(exc).replace("--since", option, 1)) from None
    except (OverflowError, ValueError, OSError):  # a time before 1 AD or after 9999
        raise UsageError(f"{option} {text!r}: not a time this machine can represent") from None


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
        self.tags = {n: (f"\x1b[{_ANSI[colors.get(n, 'white')]}m{n:<{width}} |\x1b[0m" if colour
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


def run_logs(registry: Registry, options: LogsOptions) -> int:
    """Print the logs the options ask for (following them with -f until interrupted)."""
    from ollamamax_stack.supervise.logquery import read
    from ollamamax_stack.supervise.logs import Follower
    from ollamamax_stack.supervise.paths import RunPaths

    names = list(options.services or [s.name for s in registry.managed])
    for name in names:
        registry.service(name)
    chosen = query(options.since, options.until, options.grep, options.invert)
    filtered = chosen.since is not None or chosen.until is not None or chosen.pattern is not None
    count = options.lines if options.lines is not None else (-1 if filtered else DEFAULT_LINES)
    paths = RunPaths(registry.run_dir)
    printer = Printer(registry, names, timestamps=options.timestamps,
                      prefix=not options.no_prefix, as_json=options.as_json)
    follower = Follower()
    if options.follow:  # from here on: what is written while the history prints is not lost
        for name in names:
            follower.add(name, paths.log(name))
    try:
        for line in read([(n, paths.log(n)) for n in names], chosen, count,
                         follower.offsets() if options.follow else None):
            printer.line(line)
        printer.flush()
        while options.follow:
            for line in follower.poll_lines():
                if chosen.until is not None and (line.stamp or b"") > chosen.until:
                    continue
                if chosen.keeps(line.text):
                    printer.line(line)
            printer.flush()
            time.sleep(0.1)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `logs | head`: the reader is gone
        sys.stderr.close()
        return 0
    finally:
        follower.close()
    return 0
