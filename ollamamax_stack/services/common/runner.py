"""Run apps on their sockets: READY=1 once listening, graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ollamamax_stack.errors import UsageError
from ollamamax_stack.notify import notify
from ollamamax_stack.services.common.capacity import BUDGET
from ollamamax_stack.services.common.cors import enable_cors
from ollamamax_stack.services.common.keys import STATE
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

log = logging.getLogger("ollamamax.services")
DEFAULT_DRAIN = 10.0


@dataclass(frozen=True)
class Listening:
    """One app on one of the service's named ports."""

    port_name: str
    app: web.Application


def open_sockets(settings: ServiceSettings) -> dict[str, socket.socket]:
    """Inherited sockets when systemd passed them, else freshly bound ones (all or none)."""
    names = list(settings.ports)
    inherited = inherited_sockets(names, settings.env)
    if inherited:
        return inherited
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


async def _serve(settings: ServiceSettings, apps: list[Listening],
                 sockets: dict[str, socket.socket], budget: ConnectionBudget) -> None:
    drain = settings.number("OLLAMAMAX_DRAIN_TIMEOUT", DEFAULT_DRAIN)
    access_log = log if settings.get("OLLAMAMAX_ACCESS_LOG") == "1" else None
    header_timeout = settings.number("OLLAMAMAX_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT)
    idle_timeout = settings.number("OLLAMAMAX_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)
    runners: list[web.AppRunner] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for item in apps:
            enable_cors(item.app, settings.cors)
            item.app[BUDGET] = budget
            runner = web.AppRunner(item.app, handle_signals=False, shutdown_timeout=drain,
                                   access_log=access_log, access_log_class=SafeAccessLogger,
                                   keepalive_timeout=idle_timeout)
            await runner.setup()
            runners.append(runner)
            await GuardedSite(runner, sockets[item.port_name], budget=budget,
                              header_timeout=header_timeout).start()
        where = ", ".join(f"{n} {_address(s)}" for n, s in sockets.items())
        log.info("%s %s listening: %s", settings.name, settings.version, where)
        notify("READY=1", f"STATUS={settings.name} listening: {where}")
        await stop.wait()
        log.info("%s draining (up to %.0fs)", settings.name, drain)
        notify("STOPPING=1", f"STATUS={settings.name} draining")
        for item in apps:
            item.app[STATE].draining = True
    finally:
        # Each cleanup closes the listener first, then waits for in-flight requests.
        await asyncio.gather(*(runner.cleanup() for runner in runners))
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
    sockets = open_sockets(settings)
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(settings, apps, sockets, budget))
