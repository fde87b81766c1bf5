"""A full service refuses cleanly: 503 past the connection budget, close 1013 past the WebSockets.

Liveness (`/health`) and readiness are still answered past the budget: a service that is
merely full must not be restarted by its supervisor, which would drop every client.
"""

from __future__ import annotations

from typing import Any

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from ollamamax_stack.services.common.errors import error_response
from ollamamax_stack.services.common.serving import ConnectionBudget

BUDGET: web.AppKey[ConnectionBudget] = web.AppKey("connection_budget")
PROBES = frozenset({"/health", "/health/ready"})


@web.middleware
async def connection_cap(request: web.Request, handler: Handler) -> web.StreamResponse:
    """503 (and the connection closed) for a request on a connection past the budget."""
    if getattr(request.protocol, "over_budget", False) and request.path not in PROBES:
        budget = request.app[BUDGET]
        response = error_response(request, 503, f"the service is at its limit of "
                                                f"{budget.limit} connections: try again later",
                                  "overloaded")
        response.headers["Retry-After"] = "1"
        response.force_close()
        return response
    result: web.StreamResponse = await handler(request)
    return result


def websocket_cap(paths: tuple[str, ...]) -> Any:
    """A middleware closing WebSockets on `paths` past the budget with 1013 (try again later)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        budget = request.app.get(BUDGET)
        if budget is None or request.path not in paths:
            return await handler(request)
        if budget.websockets >= budget.websocket_limit:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                           message=f"at the limit of {budget.websocket_limit} WebSockets: "
                                   "try again later".encode())
            return ws
        budget.websockets += 1
        try:
            return await handler(request)
        finally:
            budget.websockets -= 1

    return middleware
