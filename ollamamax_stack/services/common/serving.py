"""The HTTP server under abuse: header timeout, a connection budget, JSON parser errors.

aiohttp's server has a keep-alive idle timeout but no header-read timeout, so a client that
sends half a request line and then one byte a minute holds its socket forever (slowloris).
`GuardedHandler` adds nginx's `client_header_timeout`, counts connections against a budget
that ends well before the fd limit, and answers aiohttp's own parser errors (huge headers,
bad request lines) in the stack's JSON shape instead of plain text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ollamamax_stack.services.common.keys import ERROR_SHAPE
from ollamamax_stack.services.common.textsafe import printable

log = logging.getLogger("ollamamax.services")
SERVER_NAME = "ollamamax"  # the Server header: no framework name, no version
DEFAULT_HEADER_TIMEOUT = 60.0  # nginx's client_header_timeout
DEFAULT_IDLE_TIMEOUT = 75.0  # nginx's keepalive_timeout
RESERVED_FDS = 256  # log files, the revocation database, sockets to other services
MAX_DEFAULT_CONNECTIONS = 65536  # with an unlimited fd limit, memory is the limit: ~20 KiB each
LIVENESS_RESERVE = 32  # connections above the budget that may still reach /health
RESERVE_HEADER_TIMEOUT = 2.0  # seconds a connection in that reserve has to send its request


@dataclass
class ConnectionBudget:
    """Open connections and WebSockets of one service process, against their limits."""

    limit: int
    websocket_limit: int
    reserve: int = LIVENESS_RESERVE
    connections: int = 0
    websockets: int = 0


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (systemd's default soft limit is 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit cannot be the soft one: the kernel caps it at nr_open.
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, wanted, exc)
    return int(soft)


def default_budget(fd_limit: int, connections: float | None,
                   websockets: float | None) -> ConnectionBudget:
    """The configured limits, else half of what the fd limit leaves (each client may need a
    second socket to a node or another service)."""
    limit = int(connections) if connections else max(
        16, min((fd_limit - RESERVED_FDS) // 2, MAX_DEFAULT_CONNECTIONS))
    return ConnectionBudget(limit=limit, websocket_limit=int(websockets) if websockets else limit)


def _json_error(app: web.Application | None, request: BaseRequest | None, status: int,
                message: str) -> bytes:
    shape = app.get(ERROR_SHAPE) if app is not None else None
    code = "invalid_request_error" if status == 400 else "service_unavailable"
    if shape is not None and isinstance(request, web.Request):
        body: dict[str, Any] = shape(request, status, message, code)
    else:
        body = {"error": message}
    return json.dumps(body).encode()


class GuardedHandler(RequestHandler):
    """aiohttp's per-connection protocol with a header timeout and a connection budget."""

    __slots__ = ("_app", "_budget", "_header_timeout", "_header_timer", "over_budget")

    def __init__(self, manager: web.Server, *, app: web.Application, budget: ConnectionBudget,
                 header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._app = app
        self._budget = budget
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self.over_budget = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection; past the budget and its reserve, refuse it at once."""
        super().connection_made(transport)
        budget = self._budget
        budget.connections += 1
        self.over_budget = budget.connections > budget.limit
        if budget.connections > budget.limit + budget.reserve:
            self._refuse(transport)
            return
        # A connection in the reserve is there for a probe: it gets little time to say so.
        self._arm(min(self._header_timeout, RESERVE_HEADER_TIMEOUT) if self.over_budget
                  else self._header_timeout)

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        body = _json_error(self._app, None, 503, f"the service is at its limit of "
                                                 f"{self._budget.limit} connections: try again")
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n"
                f"Server: {SERVER_NAME}\r\n\r\n").encode()
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(head + body)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Give the connection back to the budget."""
        self._disarm()
        self._budget.connections -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse, then (re)arm the header timer while a request's head is incomplete."""
        super().data_received(data)
        if self._messages or self._request_in_progress or self._upgraded:
            self._disarm()
        elif self._header_timer is None and not self._force_close:
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def _arm(self, timeout: float | None = None) -> None:
        timeout = self._header_timeout if timeout is None else timeout
        if timeout > 0:
            self._header_timer = self._loop.call_later(timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if not (self._messages or self._request_in_progress or self._upgraded):
            self.force_close()  # no complete request head in time: nobody to answer

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's parser and handler errors as JSON in the app's error shape."""
        # aiohttp's own: logs the error, and raises if the response has already begun.
        super().handle_error(request, status, exc, message)
        if status >= 500:
            text = "internal error (see the service log)"
        elif isinstance(exc, LineTooLong):
            text = (f"bad HTTP request: a request line or header is longer than "
                    f"{self.max_field_size} bytes")
        else:
            reason = str(getattr(exc, "message", None) or message or "unreadable")
            text = f"bad HTTP request: {printable(reason[:200])}"
        fixed = web.Response(status=status, body=_json_error(self._app, request, status, text),
                             content_type="application/json",
                             headers={"Server": SERVER_NAME})
        fixed.force_close()
        return fixed


class GuardedSite(web.SockSite):
    """A SockSite whose connections are GuardedHandlers."""

    def __init__(self, runner: web.AppRunner, sock: Any, *, budget: ConnectionBudget,
                 header_timeout: float, **kwargs: Any) -> None:
        super().__init__(runner, sock, **kwargs)
        self._budget = budget
        self._header_timeout = header_timeout

    async def start(self) -> None:
        """Listen, making one GuardedHandler per connection."""
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None and isinstance(self._runner, web.AppRunner)
        app = self._runner.app
        # The runner's handler settings (timeouts, access log, limits) as aiohttp keeps them.
        settings: dict[str, Any] = dict(server._kwargs)

        def protocol() -> GuardedHandler:
            return GuardedHandler(server, loop=loop, app=app, budget=self._budget,
                                  header_timeout=self._header_timeout, **settings)

        self._server = await loop.create_server(protocol, sock=self._sock,
                                                backlog=self._backlog)
