"""`GET /api/v1/routes`: the routing table the gateway and the hub route with, long-polled.

Each node carries what the front ends schedule by (issue 19): `slots`, `weight`, `tier`,
`loaded` (its /api/ps) and `open_for` (seconds its breaker stays open, 0 when closed).
`?after=G&wait=S` answers as soon as the table's generation differs from G (at once when it
already does), or after S seconds with the same generation: a front end learns of a node
added, removed, up or down, or a change of its models, within one round trip.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.inference.keys import POOL
from ollamamax_stack.services.inference.pool import NodePool
from ollamamax_stack.services.routing.node import Node

MAX_WAIT = 30.0


def routes_body(pool: NodePool) -> dict[str, Any]:
    """The generation, whether the first health round is done, and each node's route."""
    now = time.monotonic()
    return {"generation": pool.generation, "ready": pool.running,
            "nodes": [{"id": n.id, "url": n.url, "healthy": n.healthy,
                       "models": sorted(n.models), **scheduling(n, now)}
                      for n in pool.nodes.values()]}


def scheduling(node: Node, now: float) -> dict[str, Any]:
    """What a front end schedules by: slots, weight, tier, loaded models, an open breaker."""
    return {"slots": node.slots, "weight": node.weight, "tier": node.tier,
            "loaded": sorted(node.loaded),
            "open_for": round(max(node.breaker.open_until - now, 0.0), 3)}


async def routes(request: web.Request) -> web.Response:
    """`GET /api/v1/routes[?after=G&wait=S]`."""
    pool = request.app[POOL]
    if "after" in request.query:
        try:
            after = int(request.query["after"])
            wait = min(float(request.query.get("wait", MAX_WAIT)), MAX_WAIT)
        except ValueError:
            raise ApiError(400, "'after' must be an integer and 'wait' a number") from None
        await pool.wait_change(after, wait)
    return web.json_response(routes_body(pool))


def add_routes(app: web.Application) -> None:
    """Mount the routing table."""
    app.router.add_get("/api/v1/routes", routes)
