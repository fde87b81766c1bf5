"""Upstream container images for the dependents `ollamamax launch` runs from Debian packages."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ollamamax_stack.registry.model import Service

PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"


@dataclass(frozen=True)
class Upstream:
    """An official image and the arguments that run it on the registry's port."""

    image: str
    args: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    health: tuple[str, ...] = ()


UPSTREAM: dict[str, Upstream] = {
    "postgres": Upstream(
        image="postgres:15",
        args=("postgres", "-p", "{port}", "-c", "listen_addresses=*"),
        environment={"POSTGRES_HOST_AUTH_METHOD": "trust"},
        health=("CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "{port}"),
    ),
    "redis": Upstream(
        image="redis:7",
        args=("redis-server", "--port", "{port}", "--save", "", "--appendonly", "no"),
        health=("CMD", "redis-cli", "-p", "{port}", "ping"),
    ),
    "prometheus": Upstream(
        image="prom/prometheus:v2.53.0",
        args=(f"--config.file={PROMETHEUS_CONFIG}", "--web.listen-address=:{port}"),
        health=("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/-/ready"),
    ),
}


def argv(service: Service) -> list[str]:
    """The service's command line from the Procfile, as words."""
    return shlex.split(service.command or "")


def upstream(service: Service) -> Upstream | None:
    """The upstream image for a service started with `ollamamax launch NAME`, else None."""
    words = argv(service)
    if len(words) >= 3 and words[0] == "ollamamax" and words[1] == "launch":
        return UPSTREAM.get(words[2])
    return None


def own_service(service: Service) -> bool:
    """Whether the service is one of the stack's own programs (`ollamamax serve NAME`)."""
    return service.own is not None  # decided once, when the registry was loaded


def filled(words: tuple[str, ...], port: int) -> list[str]:
    """Words with `{port}` replaced by the port."""
    return [w.replace("{port}", str(port)) for w in words]


def reads_prometheus_config(service: Service) -> bool:
    """Whether the service's upstream image needs a prometheus.yml mounted."""
    up = upstream(service)
    return up is not None and up.args[0].startswith("--config.file=")
