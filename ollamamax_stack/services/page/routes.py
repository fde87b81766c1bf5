"""`/` (the chat page), `/page/*` (its modules) and `/page/endpoints.js` (where to connect)."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from ollamamax_stack.services.common.settings import FRONT_ENDS, ServiceSettings, chat_url

STATIC = Path(__file__).with_name("static")
PAGE_PREFIX = "/page"
NO_STORE = {"Cache-Control": "no-store"}  # a page of an old offset must not linger


def endpoints_module(settings: ServiceSettings) -> str:
    """The front ends' `/chat` URLs in fallback order, as `render frontend` writes them."""
    found = [(name, chat_url(url)) for name in FRONT_ENDS if (url := settings.url_of(name))]
    api_base = settings.url_of("gateway") or ""
    return "\n".join([
        f"// Served by {settings.name} from the stack's registry (--offset applied).",
        f"export const endpoints = {json.dumps([url for _, url in found])};",
        f"export const names = {json.dumps({url: name for name, url in found})};",
        f"export const API_BASE = {json.dumps(api_base)};",
        "export default { endpoints, names, API_BASE };",
        "",
    ])


def add_routes(app: web.Application, settings: ServiceSettings) -> None:
    """Serve the page on `app`; its endpoints come from the service's own environment."""
    module = endpoints_module(settings)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers=NO_STORE)

    async def endpoints(request: web.Request) -> web.Response:
        return web.Response(text=module, content_type="text/javascript", headers=NO_STORE)

    app.router.add_get("/", index)
    app.router.add_get(f"{PAGE_PREFIX}/endpoints.js", endpoints)
    app.router.add_static(PAGE_PREFIX, STATIC)
