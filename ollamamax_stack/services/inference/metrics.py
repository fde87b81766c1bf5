"""The pool's own metrics, read from its state at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

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
        for node in self.pool.nodes.values():
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
        yield from (up, in_flight, requests, errors, models, healthy, failovers)
