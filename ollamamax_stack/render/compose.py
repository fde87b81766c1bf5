"""`render compose`: a docker compose file of the stack, healthchecks from the readiness probes."""

from __future__ import annotations

from typing import Any

import yaml

from ollamamax_stack import __version__
from ollamamax_stack.registry.model import Probe, Registry, Service
from ollamamax_stack.render.addresses import dns_url, network_environment
from ollamamax_stack.render.base import Rendering, header
from ollamamax_stack.render.passwords import needed_by, own_password_file, passwords
from ollamamax_stack.render.prometheus import prometheus_config
from ollamamax_stack.render.upstream import (
    PROMETHEUS_CONFIG,
    argv,
    filled,
    filled_environment,
    reads_prometheus_config,
    upstream,
)

FILE = "docker-compose.yml"
PROMETHEUS_FILE = "prometheus-compose.yml"  # scrape targets by compose service name
IMAGE = f"ollamamax-stack:{__version__}"
HOST_GATEWAY = "host.docker.internal"  # external services (Ollama on the host) are reached here
SECRETS_DIR = "/run/secrets"  # where compose mounts each of `secrets:`, by its name


def _literal(words: list[str]) -> list[str]:
    """Words compose passes on as written: `$$` keeps it from interpolating the shell's `$`."""
    return [w.replace("$", "$$") for w in words]


def _seconds(value: float) -> str:
    return f"{int(value * 1000)}ms" if value < 1 else f"{value:g}s"


def healthcheck(service: Service, probe: Probe, password_file: str = "") -> dict[str, Any]:
    """A compose healthcheck equivalent to the registry's readiness probe."""
    port = service.probe_port(probe)
    up = upstream(service)
    if up is not None and up.health:
        test: list[str] = _literal(filled(up.health, port, password_file))
    elif probe.kind == "http":
        url = f"http://127.0.0.1:{port}{probe.http}"
        test = ["CMD", "python3", "-c",
                f"import urllib.request; urllib.request.urlopen({url!r}, timeout=3)"]
    elif probe.kind == "exec":
        # `$$` keeps compose from interpolating what the shell in the container should expand.
        test = ["CMD-SHELL", (probe.exec or "").replace("$PORT", str(port)).replace("$", "$$")]
    else:
        test = ["CMD", "python3", "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {port}), 3)"]
    return {"test": test, "interval": "5s", "timeout": "3s", "retries": probe.failures,
            "start_period": _seconds(probe.timeout)}


def compose_service(registry: Registry, service: Service) -> dict[str, Any]:
    """One compose service: image, command, environment, ports, depends_on, healthcheck."""
    url_of = dns_url(registry, HOST_GATEWAY)
    up = upstream(service)
    secret = own_password_file(registry, service, SECRETS_DIR)
    port_args = (_literal(filled(up.args, service.primary_port, secret)) if up
                 else argv(service))
    entry: dict[str, Any] = {"image": up.image if up else IMAGE, "command": port_args}
    env = (filled_environment(up, secret) if up
           else network_environment(registry, service, url_of, SECRETS_DIR))
    if env:
        entry["environment"] = env
    if needed := needed_by(registry, service):
        entry["secrets"] = [p.name for p in needed]
    host = registry.bind_host(service)
    if service.port_map:
        entry["ports"] = [
            f"{host}:{port}:{service.container_port or port}" if host not in ("0.0.0.0", "")
            else f"{port}:{service.container_port or port}"
            for port in service.port_map.values()
        ]
    deps = [registry.services[d] for d in service.depends_on]
    managed = [d for d in deps if d.managed and d.in_profile(registry.profile)]
    if managed:
        entry["depends_on"] = {d.name: {"condition": _condition(d, service.conditions[d.name])}
                               for d in managed}
    if any(d.external for d in deps):
        entry["extra_hosts"] = [f"{HOST_GATEWAY}:host-gateway"]
    if not service.task:  # a task is done when it exits, not when a probe answers
        entry["healthcheck"] = healthcheck(service, service.readiness, secret)
    if service.profiles:
        entry["profiles"] = list(service.profiles)
    if reads_prometheus_config(service):
        entry["volumes"] = [f"./{PROMETHEUS_FILE}:{PROMETHEUS_CONFIG}:ro"]
    entry["restart"] = "no" if service.task else "on-failure"
    return entry


def _condition(dependency: Service, condition: str) -> str:
    """compose's depends_on condition for what the registry waits for."""
    if dependency.task and condition != "started":
        return "service_completed_successfully"  # a task is "ready" once it has completed
    if condition == "started" or dependency.optional:
        return "service_started"
    return "service_healthy"


def render_compose(registry: Registry) -> Rendering:
    """docker-compose.yml of the active profile's managed services (and Prometheus' config).

    The generated passwords are file secrets in `secrets/` beside it (`render --out` makes them).
    """
    services = {s.name: compose_service(registry, s) for s in registry.managed}
    document: dict[str, Any] = {"services": services}
    if found := passwords(registry):
        document["secrets"] = {p.name: {"file": f"./{p.source}"} for p in found}
    text = header("compose", registry.source) + "\n" + yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False, width=120)
    files = {FILE: text}
    if any("volumes" in s for s in services.values()):
        files[PROMETHEUS_FILE] = prometheus_config(
            registry, lambda s: f"{s.name}:{s.primary_port}")
    return files
