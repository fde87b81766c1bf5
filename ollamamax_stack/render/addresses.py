"""How one service reaches another where the stack runs: loopback, a compose network, a cluster."""

from __future__ import annotations

from collections.abc import Callable

from ollamamax_stack.markers import RUN_DIR_ENV
from ollamamax_stack.registry.environ import PASSWORD_FILES, env_name, service_environment
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.render.passwords import needed_by

# (service, port name or None) -> the URL other services use to reach that port.
UrlOf = Callable[[Service, "str | None"], str]

CONTAINER_RUN_DIR = "/var/lib/ollamamax"
CONTAINER_CONFIG = "/app/config/ports.toml"


def host_port(host: str, port: int) -> str:
    """`host:port`, with IPv6 hosts bracketed."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dns_url(registry: Registry, external_host: str | None = None) -> UrlOf:
    """URLs by service name (compose networks, cluster DNS); external ones at `external_host`."""
    def url_of(service: Service, port_name: str | None) -> str:
        port = service.port_map[port_name] if port_name else service.primary_port
        host = external_host if service.external and external_host else service.name
        return f"{service.scheme}://{host}:{port}"
    return url_of


def network_environment(registry: Registry, service: Service, url_of: UrlOf,
                        secrets_dir: str) -> dict[str, str]:
    """A service's environment in a container: addresses on the network, bind all.

    The password files are where the orchestrator mounts them, in `secrets_dir`.
    """
    env = service_environment(registry, service)
    env.update({"HOST": "0.0.0.0", RUN_DIR_ENV: CONTAINER_RUN_DIR,
                "OLLAMAMAX_CONFIG": CONTAINER_CONFIG})
    for key, _ in PASSWORD_FILES.values():
        env.pop(key, None)
    for password in needed_by(registry, service):
        env[password.env_key] = f"{secrets_dir}/{password.name}"
    for other in registry.active:
        if not other.port_map:
            continue  # a task without a port
        env[f"OLLAMAMAX_{env_name(other.name)}_URL"] = url_of(other, None)
        if other.named_ports:
            for name in other.port_map:
                env[f"OLLAMAMAX_{env_name(other.name)}_{env_name(name)}_URL"] = url_of(other, name)
    return env
