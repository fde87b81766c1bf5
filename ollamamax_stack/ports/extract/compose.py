"""docker compose YAML: `ports:` (short and long syntax), `expose`, `environment`, healthchecks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import interpolate, port_problem, url_refs, value_refs
from ollamamax_stack.ports.extract.yamlnodes import line_of, mapping, scalar, sequence

_SHORT = re.compile(
    r"^(?:(?P<ip>\[[^\]]*\]|[0-9.]+|[A-Za-z0-9_.-]*(?=:.*:)):)??"
    r"(?:(?P<host>\d+(?:-\d+)?):)?(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")
_RANGE = re.compile(r"^\d+(?:-\d+)?$")
_SERVICE_KEYS = frozenset({"image", "build", "ports", "environment", "command", "expose"})


def _span(text: str) -> tuple[int, int | None, str | None]:
    """`8000-8010` -> (8000, 8010, None); `8080` -> (8080, None, None); a problem when bad."""
    low, _, high = text.partition("-")
    problem = port_problem(low) or (port_problem(high) if high else None)
    first = int(low[:6])
    last = int(high[:6]) if high else None
    if problem is None and last is not None and last < first:
        problem = f"range {text} is reversed"
    if last == first:
        last = None
    return first, last, problem


def _ref(text: str, line: int, service: str, image: str | None, side: str, raw: str,
         variables: tuple[str, ...] = ()) -> PortRef:
    first, last, problem = _span(text)
    return PortRef(first, line, "publish", variables if side == "host" else (), service, None,
                   "host" if side == "host" else "container", True, raw, role="bind",
                   image=image, last=last, problem=problem)


def _publish(service: str, image: str | None, entry: Any,
             env: Mapping[str, str] | None = None) -> list[PortRef]:
    host_line = target_line = line_of(entry)
    text = scalar(entry)
    if text is not None:
        raw = text.strip()
        expanded, variables = interpolate(raw, env)
        match = _SHORT.match(expanded.strip())
        if not match:
            return []
        host, target = match.group("host"), match.group("target")
    else:
        nodes = mapping(entry)
        fields = {k: scalar(v) for k, v in nodes.items()}
        raw = ", ".join(f"{k}: {v}" for k, v in fields.items())
        host, variables_p = interpolate(fields.get("published") or "", env)
        target, variables_t = interpolate(fields.get("target") or "", env)
        variables = variables_p + variables_t
        host = host if _RANGE.match(host) else None
        target = target if _RANGE.match(target) else None
        host_line = line_of(nodes["published"]) if "published" in nodes else host_line
        target_line = line_of(nodes["target"]) if "target" in nodes else target_line
    refs: list[PortRef] = []
    if host:
        refs.append(_ref(host, host_line, service, image, "host", raw, variables))
    if target:
        refs.append(_ref(target, target_line, service, image, "container", raw))
    return refs


def _environment(service: str, node: Any, names: frozenset[str]) -> list[PortRef]:
    refs: list[PortRef] = []
    pairs: list[tuple[str, str, int]] = []
    for item in sequence(node):
        text = scalar(item)
        if text and "=" in text:
            key, _, value = text.partition("=")
            pairs.append((key.strip(), value, line_of(item)))
    for key, value_node in mapping(node).items():
        text = scalar(value_node)
        if text is not None:
            pairs.append((key, text, line_of(value_node)))
    for key, value, line in pairs:
        refs.extend(value_refs(value, line, key, names=names, side="container",
                               own_owner=service))
    return refs


def _strings(node: Any) -> list[tuple[str, int]]:
    text = scalar(node)
    if text is not None:
        return [(text, line_of(node))]
    return [(s, line_of(item)) for item in sequence(node) if (s := scalar(item)) is not None]


def _entries(node: Any) -> list[Any]:
    # `ports: "13000:13100"` (one string, not a list) is a mistake compose rejects: read it.
    return [node] if scalar(node) is not None else sequence(node)


def _service(name: str, node: Any, names: frozenset[str],
             env: Mapping[str, str] | None = None) -> list[PortRef]:
    fields = mapping(node)
    image = scalar(fields.get("image"))
    refs: list[PortRef] = []
    profiles = tuple(p for item in sequence(fields.get("profiles"))
                     if (p := scalar(item)) is not None)
    for entry in _entries(fields.get("ports")):
        refs.extend(replace(ref, profiles=profiles)
                    for ref in _publish(name, image, entry, env))
    for entry in _entries(fields.get("expose")):
        text = (scalar(entry) or "").split("/")[0]
        if _RANGE.match(text):
            first, last, problem = _span(text)
            refs.append(PortRef(first, line_of(entry), "expose", (), name, None, "container",
                                True, f"expose {text}", role="bind", image=image, last=last,
                                problem=problem))
    if "environment" in fields:
        refs.extend(replace(ref, image=image) if ref.own else ref
                    for ref in _environment(name, fields["environment"], names))
    for key in ("healthcheck", "command", "entrypoint"):
        node_ = fields.get(key)
        if key == "healthcheck":
            node_ = mapping(node_).get("test")
        for text, line in _strings(node_) if node_ is not None else []:
            for ref in url_refs(text, line, kind="url", names=names, side="container"):
                # A URL on localhost inside the container is the service's own port.
                own = ref.owner is None and ref.side == "container"
                refs.append(replace(ref, kind="healthcheck" if key == "healthcheck" else "url",
                                    owner=ref.owner or (name if own else None), own=own,
                                    image=image if own else None))
    return refs


def is_compose(root: Any) -> bool:
    """Whether a YAML document looks like a compose file (top-level services of containers)."""
    top = mapping(root)
    if "services" in top:
        return getattr(top["services"], "id", None) == "mapping"
    return bool(top) and all(_SERVICE_KEYS & set(mapping(v)) for v in top.values())


def service_images(root: Any) -> dict[str, str]:
    """Each compose service's image, by service name."""
    top = mapping(root)
    services = mapping(top["services"]) if "services" in top else top
    return {str(name): image for name, node in services.items()
            if (image := scalar(mapping(node).get("image")))}


def extract_compose(root: Any, names: frozenset[str] = frozenset(),
                    env: Mapping[str, str] | None = None) -> list[PortRef]:
    """Every port of a compose document; the seed's bare `name: {ports: ...}` form is accepted.

    `env` is the project's `.env`, which compose substitutes into `${VAR}` in published ports.
    """
    top = mapping(root)
    services = mapping(top["services"]) if "services" in top else top
    images = service_images(root)
    known = names | frozenset(name.lower() for name in services)
    refs: list[PortRef] = []
    for name, node in services.items():
        for ref in _service(str(name), node, known, env):
            # A URL to another service of this file: that service's image says what it is.
            if ref.owner and not ref.own and ref.owner in images:
                ref = replace(ref, image=images[ref.owner])
            refs.append(ref)
    return refs


def includes(text: str) -> list[str]:
    """The files a compose file's top-level `include:` merges into its project."""
    from ollamamax_stack.ports.extract.yamlnodes import compose_documents

    found: list[str] = []
    for root in compose_documents(text):
        for item in _entries(mapping(root).get("include")):
            paths = [scalar(item)] if scalar(item) is not None else _entries(
                mapping(item).get("path"))
            found.extend(p if isinstance(p, str) else scalar(p) or "" for p in paths)
    return [p for p in found if p]
