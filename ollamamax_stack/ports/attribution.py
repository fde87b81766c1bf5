"""Whose port is it? Attribute a port found in a file to a registry service, by evidence only.

Evidence is an env key the registry names, a compose service (its name or its image), a file
the registry names (`config_files`), or a URL's service host. A generic word decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.ports.extract import PortRef, Side
from ollamamax_stack.ports.products import products_in
from ollamamax_stack.registry.model import Registry, Service

GENERIC_KEY = "PORT"  # in a service's own file or compose entry, `PORT` means that service
_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_SCHEME_ALIASES = {"postgres": "postgresql", "rediss": "redis"}


@dataclass(frozen=True)
class Attribution:
    """A port's service, the named port it means (if any), and what in the file said so."""

    service: Service
    port_name: str | None
    how: str
    # Only says the port is the service's, not which: another port of it (a metrics or a
    # consensus listener in its config file) is unknown to the registry, not a drift.
    loose: bool = False


def image_name(image: str) -> str:
    """`docker.io/library/redis:7-alpine@sha256:...` -> `redis`; registry host and tag dropped."""
    ref = image.strip().split("@", 1)[0]  # [0]: the same for any maxsplit (mutants equivalent)
    head, _, last = ref.rpartition("/")
    last = last.split(":", 1)[0]  # [0]: the same for any maxsplit
    # `if p` drops the empty part a "/last" would give: `head or True` is equivalent.
    parts = [p for p in (f"{head}/{last}" if head else last).lower().split("/") if p]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


def _stems(service: Service) -> set[str]:
    # [-1] of rsplit("/") is the last component whatever the maxsplit (mutants equivalent).
    return {service.name, *(image_name(i).rsplit("/", 1)[-1] for i in service.images)}


def _image_fits(image: str, service: Service) -> bool:
    """Whether an image may be the service: one of its images, or named like one (`redismod`
    is a redis; `mariadb` is no postgres)."""
    name = image_name(image)
    last = name.rsplit("/", 1)[-1]  # any maxsplit: the same last component
    return name in {image_name(i) for i in service.images} or any(
        stem in last for stem in _stems(service))


def _names_another_product(image: str, service: Service) -> bool:
    """Whether an image is a known product that the service is not (`mysql` under postgres)."""
    last = image_name(image).rsplit("/", 1)[-1]  # any maxsplit: the same last component
    products = products_in(last)
    return bool(products) and not any(stem in p or p in stem
                                      for p in products for stem in _stems(service))


def _scheme(scheme: str) -> str:
    base = scheme.split("+", 1)[0].lower()  # [0]: the same for any maxsplit
    return _SCHEME_ALIASES.get(base, base)


def is_generic(key: str) -> bool:
    """`PORT` and `PORT_<NAME>`: a port of whatever server reads them."""
    key = key.upper()
    return key == GENERIC_KEY or key.startswith(GENERIC_KEY + "_")


class ServiceIndex:
    """The registry's services by env key, compose name, image, config file and port."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.by_key: dict[str, tuple[Service, str]] = {}
        self.by_name: dict[str, Service] = {}
        self.stated: set[str] = set()  # compose names the registry states, not service names
        self.by_image: dict[str, list[Service]] = {}
        self.port_owner: dict[int, tuple[Service, str]] = {}
        self.config_files: list[tuple[tuple[str, ...], Service]] = []
        for service in registry.services.values():
            for port_name, keys in service.env_key_map.items():
                for key in keys:
                    if not is_generic(key):
                        self.by_key.setdefault(key, (service, port_name))
            for name in (service.name, *service.compose_names):
                self.by_name.setdefault(name.lower(), service)
                self.by_name.setdefault(name.lower().replace("-", "_"), service)
            for name in service.compose_names:
                self.stated.update({name.lower(), name.lower().replace("-", "_")})
            for image in service.images:
                self.by_image.setdefault(image_name(image), []).append(service)
            for port_name, port in service.port_map.items():
                self.port_owner.setdefault(port, (service, port_name))
            for entry in service.config_files:
                self.config_files.append((Path(entry).parts, service))
        self.names = frozenset(self.by_name)
        self.named_files = {registry.path(rel) for rel in registry.stack.drift_files}

    def context(self, path: Path, where: str | None = None) -> Service | None:
        """The service a file belongs to (`config_files`).

        An entry of several components (`src/server.js`) matches a path's trailing components;
        a bare name (`.env`) only the file of that name at the top: of the registry's root, or
        of the checked tree (`where`, the path as shown from the working directory).
        """
        resolved = path.resolve()
        parts = resolved.parts
        try:
            top = resolved.relative_to(self.registry.root.resolve()).parts
        except ValueError:
            top = ()  # or None: alike unless an entry is empty ("." names no file anyway)
        shown = Path(where).parts if where else ()
        for entry, service in self.config_files:
            if len(entry) > 1 and parts[-len(entry):] == entry or entry in (top, shown):
                return service
        return None

    def named(self, path: Path, where: str | None = None) -> bool:
        """Whether the registry names the file (a drift file or a service's config file)."""
        return path.resolve() in self.named_files or self.context(path, where) is not None

    def _image_services(self, image: str) -> list[Service]:
        return self.by_image.get(image_name(image), [])

    def compose_service(self, name: str, image: str | None) -> tuple[Service, str] | None:
        """The service a compose entry is: by its image, else by its name unless its image
        says it is something else.

        A compose name the registry states yields only to another registered service's image
        or a known product's (`postgres` running `mysql`); a name guessed from a service's
        name also to an image unlike the service's (`db` running `mariadb` is not postgres).
        """
        hits = self._image_services(image) if image else []
        if len(hits) == 1:
            return hits[0], f"compose service {name} (image {image})"
        service = self.by_name.get(name.lower())
        if service is None:
            return None
        if image and (hits and service not in hits or _names_another_product(image, service)):
            return None
        if (image and name.lower() not in self.stated and service.images
                and not _image_fits(image, service)):
            return None
        return service, f"compose service {name}"

    def _port_name(self, key: str, service: Service) -> str | None:
        suffix = key[len(GENERIC_KEY) + 1:].lower()
        return suffix if suffix in service.port_map else None

    def _scheme_fits(self, ref: PortRef, service: Service) -> bool:
        # `DATABASE_URL=mysql://...` names a MySQL server even under postgres's key.
        if ref.scheme is None or ref.scheme in _WEB_SCHEMES:
            return True
        return _scheme(ref.scheme) == _scheme(service.scheme)

    def attribute(self, ref: PortRef, context: Service | None,
                  named: bool = False) -> Attribution | None:
        """The service a port belongs to, or None when nothing in the file says whose it is.

        A scrape target's host is evidence only in a file the registry names: elsewhere a
        target is as often an exporter or a metrics port beside the service (`redis:9121`).
        """
        for key in ref.keys:
            hit = self.by_key.get(key)
            if hit is not None and self._scheme_fits(ref, hit[0]):
                return Attribution(hit[0], hit[1], key)
        for key in ref.keys:
            if not is_generic(key):
                continue
            if ref.own and ref.owner:
                found = self.compose_service(ref.owner, ref.image)
                if found is None:
                    return None
                return Attribution(found[0], self._port_name(key, found[0]),
                                   f"{key} of {found[1]}")
            # In a file of the service, `PORT` is its port: a server's default or a `.env` line.
            if (ref.own or ref.kind == "env") and context is not None:
                return Attribution(context, self._port_name(key, context),
                                   f"{key} in a file of {context.name}")
            return None
        if ref.keys and ref.kind in ("env", "default", "assign"):
            return None  # a port-like key the registry does not know (METRICS_PORT): not ours
        if ref.own and ref.owner:
            found = self.compose_service(ref.owner, ref.image)
            return Attribution(found[0], None, found[1]) if found else None
        if ref.own and context is not None:
            what = {"listen-addr": "a listen address", "listen": "a listen",
                    "default": "a default port", "expose": "EXPOSE"}.get(ref.kind, ref.kind)
            return Attribution(context, None, f"{what} in a file of {context.name}",
                               loose=ref.kind == "listen-addr")
        if ref.owner and not ref.own and (named or ref.kind != "target"):
            found = self.compose_service(ref.owner, ref.image)
            if found is not None and self._scheme_fits(ref, found[0]):
                return Attribution(found[0], None, f"host {ref.owner}")
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
            # Without `container_port` a container listens on the port itself, unshifted.
            if service.shift:
                ports = {port - self.registry.offset for port in ports}
        return ports
