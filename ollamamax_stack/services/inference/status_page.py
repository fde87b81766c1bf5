"""The web port (8081): a self-refreshing status page of nodes, models and traffic."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ollamamax_stack.services.inference.cluster_api import cluster_body, models_body, nodes_body
from ollamamax_stack.services.inference.keys import POOL

PAGE = Path(__file__).with_name("static") / "status.html"
DATA_PATH = "/status.json"


async def page(request: web.Request) -> web.FileResponse:
    """`GET /`: the page; its script polls /status.json."""
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})


async def status(request: web.Request) -> web.Response:
    """`GET /status.json`: nodes, models and totals in one document."""
    pool = request.app[POOL]
    return web.json_response({"cluster": cluster_body(pool), **nodes_body(pool),
                              **models_body(pool)})


def add_routes(app: web.Application) -> None:
    """Mount the page and its data."""
    app.router.add_get("/", page)
    app.router.add_get(DATA_PATH, status)
