"""The pool's own metrics, read from its state at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ollamamax_stack.services.routing.breaker import BreakerState
from ollamamax_stack.services.routing.queue import BUCKETS, WaitQueue
from ollamamax_stack.services.routing.source import NodeSource


class PoolCollector(Collector):
    """Per node: up, in flight, requests, errors; per model its healthy nodes; plus failovers
    (the pool's, or a front end's own over its routing table)."""

    def __init__(self, pool: NodeSource) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield the pool's metric families."""
        up = GaugeMetricFamily("ollamamax_node_up", "Whether the node answers health checks.",
                               labels=["node", "url"])
        in_flight = GaugeMetricFamily("ollamamax_node_in_flight", "Requests at the node now.",
                                      labels=["node"])
        requests = CounterMetricFamily("ollamamax_node_requests", "Requests sent to the node.",
                                       labels=["node"])
        errors = CounterMetricFamily("ollamamax_node_errors",
                                     "Requests the node refused, failed or dropped.",
                                     labels=["node"])
        models = GaugeMetricFamily("ollamamax_node_models", "Models the node lists.",
                                   labels=["node"])
        slots = GaugeMetricFamily("ollamamax_node_slots",
                                  "Requests the node takes at once from the whole stack.",
                                  labels=["node"])
        tripped = GaugeMetricFamily("ollamamax_node_tripped",
                                    "Whether the node's breaker is open (1) or half-open (0.5).",
                                    labels=["node"])
        now = time.monotonic()
        for node in self.pool.nodes.values():
            slots.add_metric([node.id], node.slots)
            state = node.breaker.state(now)
            tripped.add_metric([node.id], 1.0 if state is BreakerState.OPEN
                               else 0.5 if state is BreakerState.HALF_OPEN else 0.0)
            up.add_metric([node.id, node.url], 1.0 if node.healthy else 0.0)
            in_flight.add_metric([node.id], node.in_flight)
            requests.add_metric([node.id], node.requests)
            errors.add_metric([node.id], node.errors)
            models.add_metric([node.id], len(node.models))
        healthy = GaugeMetricFamily("ollamamax_model_healthy_nodes",
                                    "Healthy nodes that list the model (0: nobody serves it).",
                                    labels=["model"])
        counts: dict[str, int] = {}
        for node in self.pool.nodes.values():
            for model in node.models:
                counts[model] = counts.get(model, 0) + (1 if node.healthy else 0)
        for model, count in sorted(counts.items()):
            healthy.add_metric([model], count)
        failovers = CounterMetricFamily("ollamamax_failovers",
                                        "Requests moved to another node before any byte.")
        failovers.add_metric([], self.pool.failovers)
        yield from (up, in_flight, requests, errors, models, healthy, failovers, slots, tripped)


class QueueCollector(Collector):
    """This process's queue for slots: depth now, time waited, refusals."""

    def __init__(self, queue: WaitQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily
                                  | HistogramMetricFamily]:
        """Yield the queue's metric families."""
        stats = self.queue.stats
        depth = GaugeMetricFamily("ollamamax_queue_depth",
                                  "Requests waiting for a free slot of a node now.")
        depth.add_metric([], self.queue.depth)
        waited = HistogramMetricFamily("ollamamax_queue_wait_seconds",
                                       "How long requests waited in the queue for a slot.")
        total = 0
        buckets = []
        for bound, count in zip(BUCKETS, stats.waits, strict=True):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", total))
        waited.add_metric([], buckets, stats.waited_sum)
        refused = CounterMetricFamily("ollamamax_queue_refused",
                                      "Requests answered 503 by the queue, by reason.",
                                      labels=["reason"])
        refused.add_metric(["full"], stats.full)
        refused.add_metric(["timeout"], stats.timeouts)
        refused.add_metric(["left"], stats.left)
        yield from (depth, waited, refused)
