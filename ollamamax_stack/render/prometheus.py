"""`render prometheus`: a prometheus.yml scraping every service's /metrics where it runs."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.render.addresses import host_port
from ollamamax_stack.render.base import Rendering, header

FILE = "prometheus.yml"
SCRAPE_INTERVAL = "5s"  # short, so a new stack shows up within seconds of `up`

# service -> the `host:port` Prometheus scrapes.
TargetOf = Callable[[Service], str]


def scraped(registry: Registry) -> list[Service]:
    """The active services that serve metrics."""
    return [s for s in registry.active if "metrics" in s.endpoints]


def prometheus_config(registry: Registry, target_of: TargetOf) -> str:
    """The prometheus.yml text, one job per scraped service."""
    jobs = []
    for service in scraped(registry):
        jobs.append({
            "job_name": service.name,
            "metrics_path": service.endpoints["metrics"],
            "scheme": "https" if service.scheme == "https" else "http",
            "static_configs": [{
                "targets": [target_of(service)],
                "labels": {"service": service.name, "stack": registry.stack.name},
            }],
        })
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "15s",
                   "external_labels": {"stack": registry.stack.name}},
        "scrape_configs": jobs,
    }
    return header("prometheus", registry.source) + "\n" + yaml.safe_dump(
        config, sort_keys=False, default_flow_style=False)


def render_prometheus(registry: Registry) -> Rendering:
    """prometheus.yml with loopback targets: Prometheus runs beside the stack."""
    def target_of(service: Service) -> str:
        return host_port(registry.connect_host(service), service.primary_port)
    return {FILE: prometheus_config(registry, target_of)}
