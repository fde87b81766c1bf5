"""Which nodes may take a request for a model, best first (`OLLAMAMAX_ROUTING=slots`).

Healthy nodes that hold the model and whose breaker lets a request through, ordered by
  1. tier (0 first): a higher tier is tried only when every node of the lower ones is full;
  2. warmth: the model loaded there (its /api/ps), then loading there (sent to it cold by
     this process less than `cold_cost` seconds ago), then cold. While the model is loaded
     or loading on a node, cold nodes of its tier and above are left out: the next requests
     wait for a slot there rather than load it elsewhere (on a node that holds few models, a
     load evicts the model loaded there, whose own requests then load it again: thrash),
     and a load under way counts until it has taken as long as a cold load is taken to cost;
  3. share: requests this process has at the node per slot, divided by the node's weight;
  4. turns among equals.
The dispatcher then takes the first free slot in this order (slots.py), or queues.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Collection

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.routing.node import Node, model_key
from ollamamax_stack.services.routing.router import no_route
from ollamamax_stack.services.routing.source import NodeSource

WARM, LOADING, COLD = 0, 1, 2


class Scheduler:
    """Orders the candidate nodes for a model; the dispatcher takes a slot in that order."""

    def __init__(self, pool: NodeSource, cold_cost: float) -> None:
        self.pool = pool
        self.cold_cost = cold_cost
        self._turn = itertools.count()

    def warmth(self, node: Node, key: str, now: float) -> int:
        """WARM, LOADING or COLD: whether `node` has the model `key` loaded."""
        if key in node.loaded:
            return WARM
        sent = node.loading.get(key)
        return LOADING if sent is not None and now - sent < self.cold_cost else COLD

    def candidates(self, model: str, exclude: Collection[str] = ()) -> list[Node]:
        """Nodes that may take `model` now, best first, leaving out the ids in `exclude`
        (tried already); a 404 or 503 ApiError when none could."""
        holders = self.pool.holders(model)
        healthy = [n for n in holders if n.healthy]
        if not healthy:
            raise no_route(self.pool, model, holders)
        now = time.monotonic()
        allowed = [n for n in healthy if n.breaker.allows(now)]
        if exclude:
            allowed = [n for n in allowed if n.id not in exclude]
            if not allowed:
                return []
        if not allowed:
            raise tripped(model, healthy, now)
        key = model_key(model)
        warmth = {n.id: self.warmth(n, key, now) for n in allowed}
        hot = [n.tier for n in allowed if warmth[n.id] != COLD]
        if hot:  # a cold node of that tier or above would evict its own model for a load
            allowed = [n for n in allowed if warmth[n.id] != COLD or n.tier < min(hot)]
        turn = next(self._turn) % len(allowed)
        rotated = allowed[turn:] + allowed[:turn]
        return sorted(rotated, key=lambda n: (n.tier, warmth[n.id],
                                              n.in_flight / (n.slots * n.weight)))


def tripped(model: str, nodes: list[Node], now: float) -> ApiError:
    """A 503 for a model whose every healthy node is open after failures in a row."""
    wait = min(n.breaker.open_until for n in nodes) - now
    names = ", ".join(f"{n.id} {n.url} ({n.last_error or 'failing'})" for n in nodes)
    return ApiError(503, f"every node holding model {model!r} failed {nodes[0].breaker.failures}"
                         f"+ requests in a row and is left alone for now; nodes: {names}",
                    "nodes_tripped", retry_after=max(1, math.ceil(wait)))
