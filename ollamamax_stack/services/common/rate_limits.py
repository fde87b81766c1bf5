"""Rate limits per caller, behind a small interface so a shared (redis) store can replace memory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ollamamax_stack.services.common.auth import PRINCIPAL, Principal
from ollamamax_stack.services.common.errors import ApiError


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, and what the caller has left."""

    allowed: bool
    remaining: int
    reset_after: float  # seconds until the window starts over


class RateLimiter(Protocol):
    """Counts requests per caller in fixed one-minute windows."""

    limit: int

    @property
    def name(self) -> str:
        """`memory`, `redis`: where requests are counted now."""

    async def hit(self, caller: str, limit: int | None = None) -> Decision:
        """Count one request of `caller` against `limit` (default: the stack's own)."""


class MemoryRateLimiter:
    """Windows kept in this process: one budget per process (per service, per worker)."""

    name = "memory"

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._counts: dict[str, tuple[float, int]] = {}

    async def hit(self, caller: str, limit: int | None = None) -> Decision:
        """Count one request; windows that ended are forgotten as they are met."""
        limit = self.limit if limit is None else limit
        now = time.monotonic()
        start, count = self._counts.get(caller, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        self._counts[caller] = (start, count)
        if len(self._counts) > 100_000:  # bound memory under a flood of callers
            self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window}
        reset = self.window - (now - start)
        return Decision(count <= limit, max(limit - count, 0), reset)


def rate_limit_middleware(limiter: RateLimiter, prefixes: tuple[str, ...]) -> Middleware:
    """429 once a caller (API key or token subject, else address) spends its minute.

    A stored key's own `--rate-limit` replaces the stack's `OLLAMAMAX_RATE_LIMIT` for it."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefixes):
            principal = request.get(PRINCIPAL)
            limit = principal.rate_limit if principal and principal.rate_limit else limiter.limit
            if limit > 0:
                await check(request, principal, limit)
        response: web.StreamResponse = await handler(request)
        return response

    async def check(request: web.Request, principal: Principal | None, limit: int) -> None:
        caller = principal.subject if principal and principal.method != "off" else (
            request.remote or "?")
        decision = await limiter.hit(caller, limit)
        if not decision.allowed:
            raise ApiError(429, f"rate limit of {limit} requests per minute reached; "
                                f"retry in {decision.reset_after:.0f}s", "rate_limit_exceeded")

    return middleware
