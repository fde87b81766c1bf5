"""The Ollama API on the pool: routed model calls, merged tags and ps, version."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from ollamamax_stack import __version__
from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.common.validation import validate
from ollamamax_stack.services.inference.keys import POOL, PROXY
from ollamamax_stack.services.inference.requests import MODELS as REQUESTS

# Each routed endpoint, with the fields a request needs and their JSON types.
ROUTED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "/api/chat": {"model": str, "messages": list},
    "/api/generate": {"model": str},
    "/api/embed": {"model": str, "input": (str, list)},
    "/api/embeddings": {"model": str},
    "/api/show": {"model": str},
}
TYPE_NAMES = {str: "a string", list: "an array", dict: "an object", bool: "a boolean"}


def _check(body: dict[str, Any], fields: dict[str, type | tuple[type, ...]]) -> None:
    for name, kind in fields.items():
        if name not in body:
            raise ApiError(400, f"missing field {name!r}", param=name)
        if not isinstance(body[name], kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            wanted = " or ".join(TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise ApiError(400, f"field {name!r} must be {wanted}", param=name)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "field 'stream' must be a boolean", param="stream")
    if "options" in body and not isinstance(body["options"], dict):
        raise ApiError(400, "field 'options' must be an object", param="options")
    if not str(body["model"]).strip():
        raise ApiError(400, "field 'model' must not be empty", param="model")


def routed(path: str) -> Handler:
    """A handler that validates the body and forwards it to a node that has the model."""
    fields = ROUTED[path]

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        _check(body, fields)
        validate(REQUESTS[path], body)  # every field it knows, down to each message
        # The body as the client sent it: nothing to re-encode on the hot path.
        return await request.app[PROXY].forward(request, body["model"], path,
                                                await request.read())

    return handler


async def tags(request: web.Request) -> web.Response:
    """`GET /api/tags`: every model of the healthy nodes, once."""
    seen: dict[str, dict[str, Any]] = {}
    for node in request.app[POOL].healthy():
        for name, entry in node.models.items():
            seen.setdefault(name, entry)
    return web.json_response({"models": [seen[k] for k in sorted(seen)]})


async def _ps_of(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    try:
        async with session.get(url + "/api/ps",
                               timeout=aiohttp.ClientTimeout(total=2)) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return []
    models = body.get("models", []) if isinstance(body, dict) else []
    return [m for m in models if isinstance(m, dict)]


async def ps(request: web.Request) -> web.Response:
    """`GET /api/ps`: the models loaded on the healthy nodes now."""
    pool = request.app[POOL]
    nodes = pool.healthy()
    found = await asyncio.gather(*(_ps_of(pool.session, n.url) for n in nodes))
    models = [{**m, "node": n.id} for n, loaded in zip(nodes, found, strict=True) for m in loaded]
    return web.json_response({"models": models})


async def version(request: web.Request) -> web.Response:
    """`GET /api/version`: the oldest Ollama version in the pool (what every node supports)."""
    versions = sorted(n.version for n in request.app[POOL].healthy() if n.version)
    return web.json_response({"version": versions[0] if versions else "0.0.0",
                              "ollamamax": __version__})


def add_routes(app: web.Application) -> None:
    """Mount the Ollama API."""
    for path in ROUTED:
        app.router.add_post(path, routed(path))
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/ps", ps)
    app.router.add_get("/api/version", version)
