"""`/api/v1/{nodes,models,cluster}`: the pool seen and changed at run time."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ollamamax_stack.services.common.apikeys import ADMIN
from ollamamax_stack.services.common.auth import PRINCIPAL, SERVICE, require_admin
from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.common.keys import AUTH, SETTINGS
from ollamamax_stack.services.common.textsafe import printable
from ollamamax_stack.services.inference.keys import POOL
from ollamamax_stack.services.inference.node_options import BadOption, node_options
from ollamamax_stack.services.inference.pool import NodePool, PoolError

MAX_WAIT = 30.0
REGISTRATION_ENV = "OLLAMAMAX_ALLOW_NODE_REGISTRATION"


def nodes_body(pool: NodePool) -> dict[str, Any]:
    """Every node with its health and models, and the pool's change counter."""
    return {"generation": pool.generation,
            "nodes": [n.snapshot() for n in pool.nodes.values()]}


def models_body(pool: NodePool) -> dict[str, Any]:
    """Which node has what."""
    return {"models": [{"name": name, "nodes": [n.id for n in nodes],
                        "healthy_nodes": [n.id for n in nodes if n.healthy]}
                       for name, nodes in pool.models().items()]}


def cluster_body(pool: NodePool) -> dict[str, Any]:
    """Totals over the pool."""
    nodes = list(pool.nodes.values())
    return {"nodes": len(nodes), "healthy_nodes": len(pool.healthy()),
            "models": len(pool.models()), "in_flight": sum(n.in_flight for n in nodes),
            "requests": sum(n.requests for n in nodes), "errors": sum(n.errors for n in nodes),
            "failovers": pool.failovers}


async def list_nodes(request: web.Request) -> web.Response:
    """`GET /api/v1/nodes[?after=G&wait=S]`: with `after`, wait until the pool changes."""
    pool = request.app[POOL]
    if "after" in request.query:
        try:
            after = int(request.query["after"])
            wait = float(request.query.get("wait", MAX_WAIT))
        except ValueError:
            raise ApiError(400, "'after' must be an integer and 'wait' a number") from None
        if not 0 <= wait:  # also false for NaN
            raise ApiError(400, "'wait' must be a number of seconds >= 0", param="wait")
        await pool.wait_change(after, min(wait, MAX_WAIT))
    return web.json_response(nodes_body(pool))


def _may_change_nodes(request: web.Request) -> None:
    """Node registration reroutes prompts: only for admin keys, or when switched on."""
    if request.app[AUTH].enabled:
        require_admin(request, "changing the nodes")
        return
    if request.app[SETTINGS].get(REGISTRATION_ENV) == "1":
        return
    raise ApiError(403, "node registration is off while auth is off: configure API keys, or "
                        f"set {REGISTRATION_ENV}=1 on the inference service", "forbidden")


async def add_node(request: web.Request) -> web.Response:
    """`POST /api/v1/nodes {"url"}`: add a node (checked at once)."""
    _may_change_nodes(request)
    body = await json_body(request)
    url = body.get("url")
    if not isinstance(url, str):
        raise ApiError(400, "field 'url' (string) is required", param="url")
    try:
        options = node_options({k: v for k, v in body.items() if k != "url"})
    except BadOption as exc:
        raise ApiError(400, str(exc)) from None
    try:
        node = request.app[POOL].add(url, options)
    except PoolError as exc:
        raise ApiError(exc.status, str(exc), param="url") from None
    return web.json_response(node.snapshot(), status=201)


async def remove_node(request: web.Request) -> web.Response:
    """`DELETE /api/v1/nodes/{id}`."""
    _may_change_nodes(request)
    try:
        node = request.app[POOL].remove(request.match_info["id"])
    except PoolError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return web.json_response({"removed": node.id, "url": node.url})


async def trip_node(request: web.Request) -> web.Response:
    """`POST /api/v1/nodes/{id}/trip {"reason"}`: a front end's breaker for the node opened;
    open it here so the table takes it to every front end (the stack's services only)."""
    if request.app[AUTH].enabled:
        principal = request.get(PRINCIPAL)
        if principal is None or principal.role not in (ADMIN, SERVICE):
            raise ApiError(403, "reporting a tripped node is for the stack's services and "
                                "admin keys", "forbidden")
    body = await json_body(request)
    reason = body.get("reason", "failures in a row")
    if not isinstance(reason, str):
        raise ApiError(400, "field 'reason' must be a string", param="reason")
    pool = request.app[POOL]
    node = pool.nodes.get(request.match_info["id"])
    if node is None:
        raise ApiError(404, f"no node with id {request.match_info['id']!r}")
    pool.trip(node, printable(reason)[:200])
    return web.json_response(node.snapshot())


async def models(request: web.Request) -> web.Response:
    """`GET /api/v1/models`."""
    return web.json_response(models_body(request.app[POOL]))


async def cluster(request: web.Request) -> web.Response:
    """`GET /api/v1/cluster`."""
    return web.json_response(cluster_body(request.app[POOL]))


def add_routes(app: web.Application) -> None:
    """Mount the cluster API."""
    app.router.add_get("/api/v1/nodes", list_nodes)
    app.router.add_post("/api/v1/nodes", add_node)
    app.router.add_delete("/api/v1/nodes/{id}", remove_node)
    app.router.add_post("/api/v1/nodes/{id}/trip", trip_node)
    app.router.add_get("/api/v1/models", models)
    app.router.add_get("/api/v1/cluster", cluster)
