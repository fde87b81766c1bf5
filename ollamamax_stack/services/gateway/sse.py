"""Server-sent events: each event written and flushed as soon as it exists."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
           "X-Accel-Buffering": "no"}  # tells nginx not to buffer the stream
DONE = b"data: [DONE]\n\n"


async def open_events(request: web.Request) -> web.StreamResponse:
    """Start an event stream."""
    response = web.StreamResponse(headers=HEADERS)
    await response.prepare(request)
    return response


async def send(response: web.StreamResponse, data: dict[str, Any] | bytes) -> None:
    """One `data:` event: an object, or bytes already encoded as a whole event."""
    await response.write(data if type(data) is bytes
                         else b"data: " + orjson.dumps(data) + b"\n\n")
