"""What the hub shares between its connections: upstream, nodes, limits, metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from ollamamax_stack.services.common.rate_limits import RateLimiter
from ollamamax_stack.services.hub.watcher import NodesWatcher
from ollamamax_stack.services.routing.client import InferenceClient

if TYPE_CHECKING:
    from ollamamax_stack.services.hub.connection import Connection


class HubMetrics:
    """WebSocket connections and messages by type."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge("ollamamax_ws_connections", "Open /chat WebSockets.",
                                 registry=registry)
        self.received = Counter("ollamamax_ws_messages_received", "Client messages by type.",
                                ["type"], registry=registry)
        self.sent = Counter("ollamamax_ws_messages_sent", "Server messages by type.",
                            ["type"], registry=registry)


@dataclass
class Hub:
    """The hub's shared state."""

    inference: InferenceClient
    watcher: NodesWatcher
    metrics: HubMetrics
    limiter: RateLimiter  # counts the chats of keys with their own `--rate-limit`
    max_message: int = 1024 * 1024
    max_chats: int = 32
    draining: bool = False
    connections: set[Connection] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
