"""`ollamamax up`: pre-flight, ordered start gated on readiness, then logs until Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.commands.output import Show, line_printer, print_table, report_down

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry
    from ollamamax_stack.supervise.logs import Follower

EXIT_UP, EXIT_NOT_UP = 0, 1
ServiceNames = Annotated[list[str] | None, typer.Argument(help="Services (default: all).",
                                                          show_default=False)]


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def up(
    ctx: typer.Context,
    services: ServiceNames = None,
    detach: Annotated[bool, typer.Option("--detach", "-d",
                                         help="Return once the stack is up.")] = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Readiness timeout per service in seconds (default: the registry's).",
        min=0.1)] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip the pre-flight checks.")] = (
        False),
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="When a service fails to start, start the rest (degraded).")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Roll a service when a file of its `watch` globs is saved (also with -d)."
    )] = False,
    tui: Annotated[bool, typer.Option(
        "--tui", help="Once up, open the live view (`ollamamax top`); quitting it leaves the "
        "stack running.")] = False,
) -> None:
    """Start the stack (or SERVICEs and what they need) in dependency order, gated on readiness."""
    from ollamamax_stack.supervise.logs import Follower
    from ollamamax_stack.supervise.paths import RunPaths

    registry = common.registry(ctx)
    names = list(services or [])
    if tui:
        _up_with_view(ctx, registry, names, timeout, keep_going, no_check, watch)
    show = line_printer([s.name for s in registry.active], registry)
    paths = RunPaths(registry.run_dir)
    follower: Follower | None = None
    stop_following = threading.Event()
    if not detach:
        # SIGINT too: a shell that starts us in the background leaves it ignored, and Python
        # then never raises KeyboardInterrupt; Ctrl-C must stop the stack however we started.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise_interrupt)
        paths.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        follower = Follower()
        for service in registry.managed:
            follower.add(service.name, paths.log(service.name))
        threading.Thread(target=_follow, args=(follower, show, stop_following),
                         daemon=True).start()
    watching = threading.Event()  # set when our own stop begins: it prints its lines itself
    try:
        _up_and_wait(registry, names, timeout, keep_going, no_check, detach, show,
                     stop_following, watching, watch)
    except KeyboardInterrupt:
        watching.set()
        # Anywhere from the first start to the wait: a Ctrl-C the moment the stack is up (while
        # the table prints) must stop it too, not leave it running behind an exit of 130.
        _stop_foreground(registry, show, stop_following)
        raise typer.Exit(0) from None
    stop_following.set()
    from ollamamax_stack.supervise import state as st

    if st.load(paths).phase == "down":
        show("", "the stack was brought down elsewhere")
        raise typer.Exit(0)
    # Nobody ran `down`: supervisord died (kill -9, OOM), and its services with it.
    show("", typer.style("supervisord died, and the services with it: the stack is down; "
                         "`ollamamax up` brings it back", fg="red"))
    raise typer.Exit(EXIT_NOT_UP)


def _up_with_view(ctx: typer.Context, registry: Registry, names: list[str],
                  timeout: float | None, keep_going: bool, no_check: bool,
                  watch: bool) -> NoReturn:
    """`up --tui`: start as `up -d` does (progress lines, the table), then the live view."""
    from ollamamax_stack.commands.top import run_view

    show = line_printer([s.name for s in registry.active], registry)
    try:
        _up_and_wait(registry, names, timeout, keep_going, no_check, True, show,
                     threading.Event(), threading.Event(), watch)
    except typer.Exit:
        from ollamamax_stack.supervise import state as st
        from ollamamax_stack.supervise.paths import RunPaths

        if st.load(RunPaths(registry.run_dir)).phase == "down":
            raise  # it did not start (what went wrong is printed): no view of nothing
    run_view(registry, ctx)
    typer.echo("the stack keeps running: `ollamamax top` to watch it again, "
               "`ollamamax down` to stop it")
    raise typer.Exit(EXIT_UP)


def _up_and_wait(registry: Registry, names: list[str], timeout: float | None, keep_going: bool,
                 no_check: bool, detach: bool, show: Show,
                 stop_following: threading.Event, watching: threading.Event, watch: bool) -> None:
    """Start, print the table, and (in the foreground) wait until the stack is down."""
    from ollamamax_stack.notify import notify
    from ollamamax_stack.supervise import lifecycle, observe

    if watch and not any(s.watch for s in registry.managed):
        show("", "warning: --watch, but no service has `watch` globs: nothing is watched")
    try:
        result = lifecycle.up(registry, names, timeout=timeout, keep_going=keep_going,
                              check=not no_check, emit=show, watch=watch)
    except lifecycle.PreflightFailed as failed:
        stop_following.set()
        for finding in failed.findings:
            where = f"{finding.where}: " if finding.line else ""  # an env file's line
            typer.echo(f"ollamamax: error: {where}{finding.message}", err=True)
        typer.echo("ollamamax: nothing was started", err=True)
        raise typer.Exit(1) from None
    if not result.ok:
        stop_following.set()
        for name, lines in result.logs.items():
            if not lines:
                continue
            typer.echo(f"--- last {len(lines)} log lines of {name} ---", err=True)
            for line in lines:
                typer.echo(f"{name} | {line}", err=True)
        # What failed first, then what it stopped: the cause is not lost among its effects.
        for name in sorted(result.failed, key=lambda n: (
                result.outcomes[n].reason or "").startswith("not started")):
            typer.echo(f"ollamamax: error: {name} {result.outcomes[name].reason}", err=True)
        if not keep_going:
            typer.echo("ollamamax: the start was stopped; everything it started was stopped",
                       err=True)
            raise typer.Exit(1)
    print_table(registry, observe.status(registry).state)  # the pids that serve, not wrappers
    if result.ok:
        notify("READY=1", f"STATUS={result.state.stack()}")
    if detach:
        raise typer.Exit(EXIT_UP if result.state.stack() == "up" else EXIT_NOT_UP)
    # From here on the watcher's events (crashes, restarts...) are the progress lines.
    threading.Thread(target=_follow_events, args=(registry, show, watching, time.time()),
                     daemon=True).start()
    while observe.status(registry).state.phase != "down":
        time.sleep(0.5)


def _follow(follower: Follower, show: Show, done: threading.Event) -> None:
    while not done.is_set():
        for name, line in follower.poll():
            show(name, line)
        done.wait(0.05)
    for name, line in follower.poll():
        show(name, line)


def _follow_events(registry: Registry, show: Show, done: threading.Event, since: float) -> None:
    from ollamamax_stack.supervise import events

    for event in events.follow(registry.run_dir, since, done=done.is_set):
        show(event.who, event.summary())


def _stop_foreground(registry: Registry, show: Show, following: threading.Event) -> None:
    from ollamamax_stack.supervise import lifecycle

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the ordered stop must not be cut short
    show("", "stopping in reverse dependency order")
    result = lifecycle.down(registry, emit=show)
    following.set()
    report_down(result, show)
