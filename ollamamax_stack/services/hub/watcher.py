"""The nodes a chat client sees: the routing table's nodes, pushed to subscribers on change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ollamamax_stack.services.routing.client import InferenceClient
from ollamamax_stack.services.routing.table import RouteTable

FIRST_WAIT = 2.0  # seconds a new socket may wait for the first table after start


def summary(table: RouteTable) -> list[dict[str, Any]]:
    """What a chat client needs to know of each node."""
    return [{"id": n.id, "url": n.url, "healthy": n.healthy, "models": sorted(n.models)}
            for n in table.nodes.values()]


class NodesWatcher:
    """Follows the client's routing table (one long-poll per process) for the chat sockets."""

    def __init__(self, client: InferenceClient) -> None:
        self.client = client
        self.nodes: list[dict[str, Any]] | None = None
        self.subscribers: set[Callable[[list[dict[str, Any]]], None]] = set()

    async def current(self, timeout: float = FIRST_WAIT) -> list[dict[str, Any]]:
        """The nodes now (waits briefly for the first table after start)."""
        if not self.client.table.received:
            await self.client.follower.first(timeout)
        if self.nodes is None and self.client.table.received:
            self.nodes = summary(self.client.table)
        return self.nodes or []

    def _changed(self, table: RouteTable) -> None:
        snapshot = summary(table)
        if snapshot != self.nodes:
            self.nodes = snapshot
            for callback in list(self.subscribers):
                callback(snapshot)

    async def start(self) -> None:
        """Start following."""
        self.client.follower.subscribers.add(self._changed)

    async def stop(self) -> None:
        """Stop following."""
        self.client.follower.subscribers.discard(self._changed)
