"""Run apps on their sockets: READY=1 once listening, graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ollamamax_stack.errors import UsageError
from ollamamax_stack.notify import notify
from ollamamax_stack.services.common.capacity import BUDGET
from ollamamax_stack.services.common.cors import enable_cors
from ollamamax_stack.services.common.keys import READINESS, STATE
from ollamamax_stack.services.common.logsafe import SafeAccessLogger, setup_logging
from ollamamax_stack.services.common.serving import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    ConnectionBudget,
    GuardedSite,
    default_budget,
    raise_fd_limit,
)
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.common.sockets import bind_socket, inherited_sockets

if TYPE_CHECKING:
    from ollamamax_stack.handoff.client import Handoff

log = logging.getLogger("ollamamax.services")
DEFAULT_DRAIN = 10.0
# After it stops accepting, a draining process keeps an idle keep-alive connection this long
# after its last answer (answering with `Connection: close`), so a next request is served.
LINGER = 1.0
# A process on held sockets accepts once it is ready; past this wait, it accepts anyway (and
# answers what it can, as a process on its own socket would).
ACCEPT_WAIT = 30.0


@dataclass(frozen=True)
class Listening:
    """One app on one of the service's named ports."""

    port_name: str
    app: web.Application


def open_sockets(settings: ServiceSettings,
                 handoff: Handoff | None = None) -> dict[str, socket.socket]:
    """Sockets systemd passed, else the stack's held ones, else freshly bound (all or none)."""
    names = list(settings.ports)
    inherited = inherited_sockets(names, settings.env)
    if inherited:
        return inherited
    if handoff is not None:
        return handoff.take(names)
    sockets: dict[str, socket.socket] = {}
    try:
        for name in names:
            sockets[name] = bind_socket(settings.host, settings.ports[name], settings.name)
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _close_when_draining(request: web.Request, response: web.StreamResponse) -> None:
    # A client must not send its next request on a connection that is about to close.
    if request.app[STATE].draining:
        response.force_close()  # the server closes after this answer...
        response.headers["Connection"] = "close"  # ...and says so (its headers are made by now)


async def _until_ready(apps: list[Listening], wait: float) -> None:
    """Wait until every app says it is ready (its /health/ready), at most `wait` seconds."""
    deadline = asyncio.get_running_loop().time() + wait
    pending = list(apps)
    while pending and asyncio.get_running_loop().time() < deadline:
        pending = [item for item in pending if not (await item.app[READINESS]()).ready]
        if pending:
            await asyncio.sleep(0.05)
    if pending:
        log.warning("not ready after %.0fs: accepting connections anyway", wait)


def _shorten_keepalive(runners: list[web.AppRunner], linger: float) -> None:
    """Idle keep-alive connections close `linger` after their last answer, not at once.

    A client sends its next request on a connection the moment the previous answer ends;
    closing idle connections at once would race with it ("server disconnected"). Answers
    given while draining say `Connection: close`, so a served client moves on by itself.
    """
    loop = asyncio.get_running_loop()
    for runner in runners:
        for conn in runner.server.connections if runner.server is not None else []:
            try:  # aiohttp's own keep-alive timer (private): degrade to closing at the end
                conn._keepalive_timeout = linger
                conn._next_keepalive_close_time = loop.time() + linger
                loop.call_at(conn._next_keepalive_close_time, conn._process_keepalive)
            except AttributeError:
                return


async def _stop_accepting(sites: list[web.BaseSite], runners: list[web.AppRunner],
                          linger: float, drain: float) -> None:
    """Close our listeners (the holder keeps the ports), then let connections finish."""
    for site in sites:
        await site.stop()
    _shorten_keepalive(runners, linger)
    deadline = asyncio.get_running_loop().time() + drain
    while asyncio.get_running_loop().time() < deadline:
        if not any(_open_connections(r) for r in runners):
            return
        await asyncio.sleep(0.02)


def _open_connections(runner: web.AppRunner) -> int:
    """Connections whose client is still there (a handler whose client left answers nobody)."""
    server = runner.server
    return 0 if server is None else sum(1 for c in server.connections
                                        if c.transport is not None)


async def _serve(settings: ServiceSettings, apps: list[Listening],
                 sockets: dict[str, socket.socket], budget: ConnectionBudget,
                 handoff: Handoff | None = None) -> None:
    drain = settings.number("OLLAMAMAX_DRAIN_TIMEOUT", DEFAULT_DRAIN)
    access_log = log if settings.get("OLLAMAMAX_ACCESS_LOG") == "1" else None
    header_timeout = settings.number("OLLAMAMAX_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT)
    idle_timeout = settings.number("OLLAMAMAX_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)
    probe_prefix = settings.get("OLLAMAMAX_PROBE_PREFIX")
    runners: list[web.AppRunner] = []
    sites: list[web.BaseSite] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for item in apps:
            enable_cors(item.app, settings.cors)
            item.app[BUDGET] = budget
            item.app.on_response_prepare.append(_close_when_draining)
            # The drain is waited out in _stop_accepting; cleanup only ends what is left.
            runner = web.AppRunner(item.app, handle_signals=False, shutdown_timeout=1.0,
                                   access_log=access_log, access_log_class=SafeAccessLogger,
                                   keepalive_timeout=idle_timeout)
            await runner.setup()
            runners.append(runner)
            if probe_prefix:
                # This process's own door: probes reach it, not whichever worker accepts.
                path = Path(f"{probe_prefix}.{item.port_name}.sock")
                path.unlink(missing_ok=True)
                probe = web.UnixSite(runner, str(path))
                await probe.start()
                sites.append(probe)
        if handoff is not None:
            # On a held socket, accepting takes clients that the old (or next) process would
            # serve: take none before this process could answer them.
            await _until_ready(apps, settings.number("OLLAMAMAX_ACCEPT_WAIT", ACCEPT_WAIT))
        for item, runner in zip(apps, runners, strict=True):
            site: web.BaseSite = GuardedSite(runner, sockets[item.port_name], budget=budget,
                                             header_timeout=header_timeout)
            await site.start()
            sites.append(site)
        where = ", ".join(f"{n} {_address(s)}" for n, s in sockets.items())
        log.info("%s %s listening: %s", settings.name, settings.version, where)
        notify("READY=1", f"STATUS={settings.name} listening: {where}")
        await stop.wait()
        log.info("%s draining (up to %.0fs)", settings.name, drain)
        notify("STOPPING=1", f"STATUS={settings.name} draining")
        for item in apps:
            item.app[STATE].draining = True
        if handoff is not None:
            handoff.close()
        await _stop_accepting(sites, runners, min(LINGER, drain), drain)
    finally:
        # Each cleanup closes what still listens, then ends what is left.
        await asyncio.gather(*(runner.cleanup() for runner in runners))
        if probe_prefix:
            for item in apps:
                Path(f"{probe_prefix}.{item.port_name}.sock").unlink(missing_ok=True)
        log.info("%s stopped", settings.name)


def loop_factory(settings: ServiceSettings) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed, else asyncio's (compare: OLLAMAMAX_EVENT_LOOP=asyncio make bench).

    `OLLAMAMAX_EVENT_LOOP=asyncio` keeps the standard loop; `uvloop` insists on uvloop.
    """
    wanted = settings.get("OLLAMAMAX_EVENT_LOOP", "auto")
    if wanted not in ("auto", "uvloop", "asyncio"):
        raise UsageError(f"environment variable OLLAMAMAX_EVENT_LOOP={wanted!r} must be "
                         "auto, uvloop or asyncio")
    if wanted != "asyncio":
        try:
            import uvloop
        except ImportError:
            if wanted == "uvloop":
                raise UsageError("OLLAMAMAX_EVENT_LOOP=uvloop but uvloop is not installed "
                                 "(pip install uvloop)") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(settings: ServiceSettings, apps: list[Listening]) -> None:
    """Serve `apps` on the settings' ports until SIGTERM/SIGINT, then drain and return."""
    setup_logging()
    factory = loop_factory(settings)
    budget = default_budget(raise_fd_limit(), settings.number("OLLAMAMAX_MAX_CONNECTIONS", 0),
                            settings.number("OLLAMAMAX_MAX_WEBSOCKETS", 0))
    from ollamamax_stack.handoff.client import from_environment

    handoff = from_environment(settings.env, settings.name)
    sockets = open_sockets(settings, handoff)
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(settings, apps, sockets, budget, handoff))
