"""`/openapi.json` (from the hand-written openapi.yaml beside this file) and offline `/docs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from ollamamax_stack import __version__

STATIC = Path(__file__).with_name("static")


def openapi_document() -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document."""
    document: dict[str, Any] = yaml.safe_load((STATIC / "openapi.yaml").read_text())
    document["info"]["version"] = __version__
    return document


def add_routes(app: web.Application) -> None:
    """Mount the document, the Swagger UI page and its assets (no network needed)."""
    document = openapi_document()

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    async def docs(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "docs.html")

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)
    app.router.add_static("/docs/static", swagger_ui_path)
