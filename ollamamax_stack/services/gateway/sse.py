"""Server-sent events: each event written and flushed as soon as it exists."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
           "X-Accel-Buffering": "no"}  # tells nginx not to buffer the stream


async def open_events(request: web.Request) -> web.StreamResponse:
    """Start an event stream."""
    response = web.StreamResponse(headers=HEADERS)
    await response.prepare(request)
    return response


async def send(response: web.StreamResponse, data: dict[str, Any] | str) -> None:
    """One `data:` event."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    await response.write(f"data: {text}\n\n".encode())
