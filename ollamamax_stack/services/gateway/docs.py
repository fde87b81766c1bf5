"""`/openapi.json` (from the hand-written openapi.yaml beside this file) and offline `/docs`."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ollamamax_stack import __version__
from ollamamax_stack.errors import OllamamaxError

STATIC = Path(__file__).with_name("static")


def swagger_ui_dir() -> Path:
    """Swagger UI 5's files (it reads OpenAPI 3.1), from the swagger-ui-py package."""
    # Found, not imported: the package's own code (jinja2 handlers) is of no use here.
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise OllamamaxError("swagger-ui-py is not installed: reinstall ollamamax-stack")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


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
    app.router.add_static("/docs/static", swagger_ui_dir())
