"""A front end's copy of the inference service's routing table, plus what it saw itself.

Two views are reconciled here. The inference service is the authority on which nodes exist,
which models they hold, and whether its health checks pass; each copy of the table takes
those as they come. A front end also sees its own requests: a node whose connect is refused
is *suspect* here at once and for `suspect_for` seconds (not routed to), without waiting
for the inference service's next health check. The suspicion ends
early when the inference service reports the node coming back up. In-flight counts are
local: each front end balances the requests it sends itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ollamamax_stack.services.routing.node import Node, model_key

SUSPECT_FOR = 5.0  # seconds a node that refused a connect is avoided
SEEN_WARM_FOR = 10.0  # seconds a model that answered here counts as loaded without /api/ps


@dataclass
class Contact:
    """The last exchange with the inference service: when, and what went wrong since."""

    received: float | None = None  # time.time() of the last table received
    answered: float | None = None  # time.time() of the last answer (same table or new)
    error: str | None = None  # set while the inference service is not answering
    since: float | None = None  # when it stopped answering


class RouteTable:
    """Nodes to route to, their models and health, as the inference service last said."""

    def __init__(self, suspect_for: float = SUSPECT_FOR,
                 on_trip: Callable[[Node], None] | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        self.on_trip = on_trip  # tells the inference service of a breaker opened here
        self.generation = -1
        self.ready = False  # the inference service finished its first health round
        self.failovers = 0
        self.suspect_for = suspect_for
        self.contact = Contact()
        self._reported: dict[str, bool] = {}  # node id -> healthy, as the inference says
        self._suspect: dict[str, float] = {}  # node id -> monotonic time the suspicion ends

    @property
    def received(self) -> bool:
        """Whether any table has arrived yet."""
        return self.contact.received is not None

    @property
    def stale(self) -> bool:
        """Whether the inference service stopped answering after a table arrived."""
        return self.received and self.contact.error is not None

    def apply(self, body: dict[str, Any]) -> bool:
        """Take a table from `/api/v1/routes`; True when nodes, health or models changed."""
        now = time.time()
        self.contact.answered = now
        self.contact.error = self.contact.since = None
        generation = int(body["generation"])
        self.ready = bool(body.get("ready", True))
        if generation == self.generation and self.received:
            return False
        self.generation = generation
        self.contact.received = now
        nodes: dict[str, Node] = {}
        for item in body["nodes"]:
            node_id, healthy = str(item["id"]), bool(item["healthy"])
            # The same Node object across tables keeps its in-flight count and counters.
            node = self.nodes.get(node_id) or Node(url=str(item["url"]), id=node_id)
            node.models = {model_key(str(m)): {} for m in item["models"]}
            node.checked = True
            # (mutmut: the default is never read for a suspect node, which apply() reported)
            if healthy and not self._reported.get(node_id, True):
                self._suspect.pop(node_id, None)  # the inference saw it come back
                node.breaker.success()  # and a restarted node starts afresh
            apply_scheduling(node, item)
            self._reported[node_id] = healthy
            node.healthy = healthy and node_id not in self._suspect
            node.last_error = None if healthy else (node.last_error or "down (inference)")
            nodes[node_id] = node
        for gone in set(self._reported) - set(nodes):
            # (mutmut: `gone` is always there; an entry left over is rewritten when it returns)
            self._reported.pop(gone, None)
            self._suspect.pop(gone, None)
        self.nodes = nodes
        return True

    def lost(self, error: str) -> None:
        """The inference service did not answer: keep routing with the last table."""
        if self.contact.error is None:
            self.contact.since = time.time()
        self.contact.error = error

    def _expire(self) -> None:
        now = time.monotonic()
        for node_id, until in list(self._suspect.items()):
            if until <= now:  # (mutmut: `<` differs only within one clock tick)
                del self._suspect[node_id]
                node = self.nodes.get(node_id)
                if node is not None:
                    # (mutmut: the default is never read: every node of the table was reported)
                    node.healthy = self._reported.get(node_id, False)

    def healthy(self) -> list[Node]:
        """The nodes to route to now."""
        if self._suspect:
            self._expire()
        return [n for n in self.nodes.values() if n.healthy]

    def holders(self, model: str) -> list[Node]:
        """The nodes (healthy or not) that list `model`."""
        if self._suspect:
            self._expire()
        key = model_key(model)
        return [n for n in self.nodes.values() if key in n.models]

    def record_failure(self, node: Node, error: str, refused: bool = False) -> None:
        """A request could not reach `node`: count it; avoid the node when it refused."""
        node.errors += 1
        node.last_error = error
        if refused:
            self._suspect[node.id] = time.monotonic() + self.suspect_for
            node.healthy = False

    def tripped(self, node: Node) -> None:
        """A breaker opened here: the inference service publishes it to every front end."""
        if self.on_trip is not None:
            self.on_trip(node)


def apply_scheduling(node: Node, item: dict[str, Any]) -> None:
    """A table entry's slots, weight, tier, loaded models and open breaker, onto `node`."""
    node.slots = int(item.get("slots", node.slots))
    node.weight = float(item.get("weight", node.weight))
    node.tier = int(item.get("tier", node.tier))
    # A model seen answering here stays warm a while: the table's /api/ps may lag behind it.
    now = time.monotonic()
    seen = {m: t for m, t in node.loaded.items() if t and now - t < SEEN_WARM_FOR}
    node.loaded = {**{model_key(str(m)): 0.0 for m in item.get("loaded", ())}, **seen}
    for model in node.loaded:
        node.loading.pop(model, None)
    open_for = float(item.get("open_for", 0))
    if open_for > 0:
        node.breaker.open(now + open_for)
