"""Which node answers a request: healthy, has the model, least in flight, round-robin on ties.

The router before issue 19, kept as `OLLAMAMAX_ROUTING=least-in-flight`; the default is
`scheduler.py`.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.routing.node import Node

if TYPE_CHECKING:
    from ollamamax_stack.services.routing.source import NodeSource


class Router:
    """Orders the candidate nodes for a model; the dispatcher tries them in that order.

    In-flight counts are those of this process (the inference service, a gateway or a hub
    each balance their own requests); health and models come from the node source.
    """

    def __init__(self, pool: NodeSource) -> None:
        self.pool = pool
        self._turn = itertools.count()

    def candidates(self, model: str) -> list[Node]:
        """Healthy nodes that have `model`, best first; a 404 or 503 ApiError when none."""
        holders = self.pool.holders(model)
        healthy = [n for n in holders if n.healthy]
        if healthy:
            # Rotating the start before a stable sort makes equal loads take turns.
            turn = next(self._turn) % len(healthy)
            rotated = healthy[turn:] + healthy[:turn]
            return sorted(rotated, key=lambda n: n.in_flight)
        raise no_route(self.pool, model, holders)


def no_route(pool: NodeSource, model: str, holders: list[Node]) -> ApiError:
    """Why no healthy node can take `model`: none configured, all down, or none holds it."""
    if not pool.nodes:
        return ApiError(503, f"no Ollama node is configured to serve model {model!r} "
                             "(set OLLAMA_NODES or POST /api/v1/nodes)", "no_nodes")
    if holders or not pool.healthy():
        tried = ", ".join(f"{n.id} {n.url} ({n.last_error or 'down'})"
                          for n in (holders or list(pool.nodes.values())))
        return ApiError(503, f"no healthy node for model {model!r}; nodes: {tried}",
                        "no_healthy_node")
    return ApiError(404, f"model {model!r} not found on any node, try pulling it first "
                         f"(nodes: {', '.join(n.url for n in pool.nodes.values())})",
                    "model_not_found")
