"""Who a model request is for, as the routing queue sees it: the key to be fair across, and
whether the client is still there (a client that left leaves the queue)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Caller:
    """The API key (or token subject) of a request and a test of its connection."""

    key: str = "anonymous"
    gone: Callable[[], bool] = _never


ANYONE = Caller()
CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller", default=ANYONE)


def caller_of(request: web.Request, subject: str) -> Caller:
    """The caller of `request`: gone once its connection closed."""
    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return Caller(subject, gone)
