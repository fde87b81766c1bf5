"""`/health` (liveness) and `/health/ready` (readiness: ready, degraded, reasons)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ollamamax_stack.services.common.auth import bearer
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.keys import AUTH, HEALTH_EXTRA, READINESS, SETTINGS, STATE
from ollamamax_stack.services.common.textsafe import printable


@dataclass(frozen=True)
class Readiness:
    """Whether a service can do its job now, and what limits it."""

    ready: bool
    degraded: bool = False
    reasons: list[str] = field(default_factory=list)
    # What anonymous callers see while auth is on (no node address, no node error); None: reasons.
    summary: list[str] | None = None

    def shown_to(self, authenticated: bool) -> list[str]:
        """The reasons for a caller who proved who they are, else the summary."""
        return self.reasons if authenticated or self.summary is None else self.summary


def nodes_down(total: int, down: int) -> str:
    """The count of down nodes, for callers who may not see their addresses and errors."""
    return f"{down} of {total} Ollama nodes are down (details for key holders)"


@dataclass
class ServiceState:
    """The process's life: when it started and whether it is draining."""

    started: float = field(default_factory=time.monotonic)
    draining: bool = False


async def always_ready() -> Readiness:
    """Readiness of a service that needs nothing but itself."""
    return Readiness(ready=True)


async def health_handler(request: web.Request) -> web.Response:
    """`GET /health`: alive, with name, version, uptime and whether auth is on."""
    app = request.app
    settings = app[SETTINGS]
    body: dict[str, Any] = {
        "status": "ok",
        "service": settings.name,
        "version": settings.version,
        "uptime": round(time.monotonic() - app[STATE].started, 3),
        "auth": app[AUTH].mode,
    }
    extra: dict[str, Any] = app[HEALTH_EXTRA]
    # A callable is a value that changes at run time (such as redis going away).
    body.update({key: value() if callable(value) else value for key, value in extra.items()})
    return web.json_response(body)


async def _authenticated(request: web.Request) -> bool:
    """Whether the caller of an open endpoint sent valid credentials (or auth is off)."""
    auth = request.app[AUTH]
    if not auth.enabled:
        return True
    credential = bearer(request)
    if not credential:
        return False
    try:
        await auth.authenticate(credential)
    except ApiError:
        return False
    return True


async def ready_handler(request: web.Request) -> web.Response:
    """`GET /health/ready`: 200 when ready (maybe degraded), 503 when not."""
    app = request.app
    if app[STATE].draining:
        state = Readiness(ready=False, reasons=["draining: the service is shutting down"])
    else:
        state = await app[READINESS]()
    # Reasons quote nodes' own error texts: `ollamamax status` prints them to a terminal.
    body = {"ready": state.ready, "degraded": state.degraded,
            "reasons": [printable(r) for r in state.shown_to(await _authenticated(request))]}
    return web.json_response(body, status=200 if state.ready else 503)
