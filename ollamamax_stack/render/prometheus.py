"""`render prometheus`: a prometheus.yml scraping every service's /metrics where it runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


def prometheus_config(registry: Registry, target_of: TargetOf,
                      credentials_file: Path | None = None,
                      rule_files: tuple[str, ...] = ()) -> str:
    """The prometheus.yml text, one job per scraped service; with `credentials_file`, each job
    sends its content as a bearer key (the stack's `/metrics` needs one when auth is on);
    `rule_files` beside the config (`render alerts`)."""
    jobs = []
    for service in scraped(registry):
        job: dict[str, object] = {
            "job_name": service.name,
            "metrics_path": service.endpoints["metrics"],
            "scheme": "https" if service.scheme == "https" else "http",
        }
        if credentials_file is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": str(credentials_file)}
        job["static_configs"] = [{
            "targets": [target_of(service)],
            "labels": {"service": service.name, "stack": registry.stack.name},
        }]
        jobs.append(job)
    config: dict[str, object] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "15s",
                   "external_labels": {"stack": registry.stack.name}},
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    config["scrape_configs"] = jobs
    return header("prometheus", registry.source) + "\n" + yaml.safe_dump(
        config, sort_keys=False, default_flow_style=False)


def render_prometheus(registry: Registry, credentials_file: Path | None = None,
                      rule_files: tuple[str, ...] = ()) -> Rendering:
    """prometheus.yml with loopback targets: Prometheus runs beside the stack."""
    def target_of(service: Service) -> str:
        return host_port(registry.connect_host(service), service.primary_port)
    return {FILE: prometheus_config(registry, target_of, credentials_file, rule_files)}
