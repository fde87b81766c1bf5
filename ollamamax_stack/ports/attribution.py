"""Whose port is it? Attribute a file's port reference to a registry service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.ports.extract import PortRef, Side
from ollamamax_stack.registry.model import Registry, Service

GENERIC_KEY = "PORT"  # inside a service's own file or compose entry, `PORT` means that service
# Names that only hint: an upstream or a scrape job may well group several services, so a
# registered port in them is taken as its owner's, and only an unknown port is their drift.
WEAK_OWNER_KINDS = frozenset({"upstream", "target"})


@dataclass(frozen=True)
class Attribution:
    """A reference's service, the named port it means (if any), and what in the file said so."""

    service: Service
    port_name: str | None
    how: str


class ServiceIndex:
    """The registry's services by env key, name, config file, endpoint and port, for lookups."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.by_key: dict[str, tuple[Service, str]] = {}
        self.by_name: dict[str, Service] = {}
        self.by_endpoint: dict[str, set[str]] = {}
        self.port_owner: dict[int, tuple[Service, str]] = {}
        self.container_known: set[int] = set()
        self.origins: set[int] = set()  # ports of the CORS origins the registry allows
        self.config_files: list[tuple[tuple[str, ...], Service]] = []
        for service in registry.services.values():
            for port_name, keys in service.env_key_map.items():
                for key in keys:
                    self.by_key.setdefault(key, (service, port_name))
            for name in (service.name, *service.compose_names):
                self.by_name.setdefault(name.lower(), service)
                self.by_name.setdefault(name.lower().replace("-", "_"), service)
            for path in service.endpoints.values():
                self.by_endpoint.setdefault(path.rstrip("/") or "/", set()).add(service.name)
            for port_name, port in service.port_map.items():
                self.port_owner.setdefault(port, (service, port_name))
                self.container_known.add(port)
                if service.shift:
                    self.container_known.add(port - registry.offset)
            if service.container_port:
                self.container_known.add(service.container_port)
            for origin in service.cors:
                port_text = origin.rsplit(":", 1)[-1].rstrip("/")
                if port_text.isdigit():
                    self.origins.add(int(port_text))
            for entry in service.config_files:
                self.config_files.append((Path(entry).parts, service))
        self.names = frozenset(self.by_name)

    def context(self, path: Path) -> Service | None:
        """The service a file belongs to (`config_files`, matched by trailing path components)."""
        try:
            parts = path.resolve().relative_to(self.registry.root).parts
        except ValueError:
            parts = path.resolve().parts
        for entry, service in self.config_files:
            if parts[-len(entry):] == entry:
                return service
        return None

    def _port_name(self, key: str, service: Service) -> str | None:
        suffix = key[len(GENERIC_KEY) + 1:].lower()
        return suffix if suffix in service.port_map else None

    def attribute(self, ref: PortRef, context: Service | None) -> Attribution | None:
        """The service a reference names, or None when nothing in the file says whose it is."""
        owner = self.by_name.get(ref.owner.lower()) if ref.owner else None
        home = owner if owner is not None and ref.own else context
        for key in ref.keys:
            if home is not None and (key == GENERIC_KEY or key.startswith(GENERIC_KEY + "_")):
                where = f"of compose service {ref.owner}" if home is owner else (
                    f"in a file of {home.name}")
                return Attribution(home, self._port_name(key, home), f"{key} {where}")
        for key in ref.keys:
            hit = self.by_key.get(key)
            if hit is not None:
                return Attribution(hit[0], hit[1], key)
        if ref.keys and ref.own and ref.kind in ("env", "default"):
            return None  # a port-like key the registry does not know (METRICS_PORT): not ours
        if owner is not None and not (ref.kind in WEAK_OWNER_KINDS and ref.port in self.port_owner):
            what = {"publish": "compose service", "expose": "compose service",
                    "healthcheck": "compose service", "upstream": "upstream",
                    "target": "scrape job"}.get(ref.kind, "host")
            return Attribution(owner, None, f"{what} {ref.owner}")
        if ref.own and context is not None:
            return Attribution(context, None, f"{ref.kind} in a file of {context.name}")
        if ref.path and ref.port not in self.port_owner:
            service = self._by_path(ref.path)
            if service is not None:
                return Attribution(service, None, f"URL path {ref.path}")
        return None

    def _by_path(self, path: str) -> Service | None:
        # The longest endpoint that prefixes the path decides, if one service alone serves it.
        path = path.rstrip("/") or "/"
        best: set[str] = set()
        best_len = 0
        for endpoint, owners in self.by_endpoint.items():
            if endpoint == "/" or len(endpoint) <= best_len:
                continue
            if path == endpoint or path.startswith(endpoint + "/"):
                best, best_len = owners, len(endpoint)
        if len(best) == 1:
            return self.registry.services[next(iter(best))]
        return None

    def expected(self, attribution: Attribution, side: Side) -> set[int]:
        """The ports the registry gives the attributed service, on the host or in a container."""
        service = attribution.service
        if attribution.port_name is not None:
            ports = {service.port_map[attribution.port_name]}
        else:
            ports = set(service.port_map.values())
        if side == "container":
            if service.container_port:
                return {service.container_port}
            # A container's own port does not move with the stack's host-side offset.
            if service.shift:
                ports |= {port - self.registry.offset for port in ports}
        return ports

    def known(self, port: int, side: Side) -> bool:
        """Whether any service has this port (host side) or could listen on it in a container."""
        if side == "container":
            return port in self.container_known
        return port in self.port_owner or port in self.origins
