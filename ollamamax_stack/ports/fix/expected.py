"""Which port a drifting place should have: the finding's own `expected`, else the registry's."""

from __future__ import annotations

from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.registry.model import Registry, Service

CONTAINER_HINT = "inside its container"  # how a drift message says the port is container-side


def side_of(finding: Finding) -> str:
    """`host` or `container`: the finding's `side` if the model gives one, else its message's."""
    side = getattr(finding, "side", None)
    if side in ("host", "container"):
        return str(side)
    return "container" if CONTAINER_HINT in finding.message else "host"


def container_port(registry: Registry, service: Service, host_port: int) -> int:
    """The port a service listens on inside its container for one of its host ports."""
    if service.container_port:
        return service.container_port
    # A container's own port does not move with the stack's host-side offset.
    return host_port - registry.offset if service.shift else host_port


def port_name_for_key(service: Service, key: str | None) -> str | None:
    """The named port an env key means (`WEB_PORT` -> web, `PORT_WEB` -> web), if any."""
    if not key:
        return None
    for name, keys in service.env_key_map.items():
        if key in keys:
            return name
    suffix = key.upper().removeprefix("PORT_").lower()
    return suffix if key.upper().startswith("PORT_") and suffix in service.port_map else None


def host_port(service: Service, key: str | None) -> int | None:
    """The service's host port that `key` names, or its only port; None when it is ambiguous."""
    name = port_name_for_key(service, key)
    if name is not None:
        return service.port_map[name]
    ports = list(service.port_map.values())
    return ports[0] if len(ports) == 1 else None


def expected_port(registry: Registry, finding: Finding, key: str | None = None) -> int | None:
    """The port the registry wants where `finding` is, or None when that is not clear."""
    explicit = getattr(finding, "expected", None)
    if isinstance(explicit, int) and not isinstance(explicit, bool):
        return explicit
    service = registry.services.get(finding.service or "")
    if service is None:
        return None
    port = host_port(service, key)
    if port is None:
        return None
    return container_port(registry, service, port) if side_of(finding) == "container" else port
