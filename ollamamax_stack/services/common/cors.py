"""CORS from the registry's `cors` origins (aiohttp-cors), on every route of an app."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web


def enable_cors(app: web.Application, origins: list[str]) -> None:
    """Let browsers on `origins` call every route already added to `app`."""
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=True, expose_headers="*", allow_headers="*", allow_methods="*")
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in list(app.router.routes()):
        # aiohttp-cors answers preflights itself; a resource's HEAD twin is covered by GET.
        if route.method not in ("OPTIONS", "HEAD"):
            cors.add(route)
