"""`render env`: the `.env` of the port document (PORT, API_PORT, GO_API_PORT, ...)."""

from __future__ import annotations

from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.render.addresses import host_port
from ollamamax_stack.render.base import Rendering, header, template

FILE = ".env"
# Keys whose value is an address rather than a bare port number.
_URL_SUFFIXES = ("_URL", "_BASE", "_NODES")
_HOST_KEYS = ("_HOST",)


def env_value(registry: Registry, service: Service, port_name: str, key: str) -> str:
    """The value an env key takes: a URL, `host:port`, or the port number, by the key's name."""
    if key.endswith(_URL_SUFFIXES) or key in ("API_BASE",):
        url = registry.url(service, port_name)
        return f"{url}/postgres" if service.scheme.startswith("postgres") else url
    if key.endswith(_HOST_KEYS):
        return host_port(registry.connect_host(service), service.port_map[port_name])
    return str(service.port_map[port_name])


def render_env(registry: Registry) -> Rendering:
    """Every env key of every active service, grouped by service."""
    blocks: list[str] = []
    for service in registry.active:
        lines = [f"# {service.name}: {service.description}" if service.description
                 else f"# {service.name}"]
        for port_name, keys in service.env_key_map.items():
            lines += [f"{key}={env_value(registry, service, port_name, key)}" for key in keys]
        blocks.append("\n".join(lines))
    text = template("env", "env.template").substitute(
        header=header("env", registry.source), profile=registry.profile,
        offset=registry.offset, body="\n\n".join(blocks))
    return {FILE: text}
