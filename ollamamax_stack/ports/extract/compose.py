"""docker compose YAML: `ports:` (short and long syntax), `expose`, `environment`, healthchecks."""

from __future__ import annotations

import re
from typing import Any

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import interpolate, url_refs, valid_port, value_refs
from ollamamax_stack.ports.extract.yamlnodes import line_of, mapping, scalar, sequence

MAX_RANGE = 1024  # a wider published range is listed by its ends only
_SHORT = re.compile(
    r"^(?:(?P<ip>\[[^\]]*\]|[0-9.]+|[A-Za-z0-9_.-]*(?=:.*:)):)??"
    r"(?:(?P<host>\d+(?:-\d+)?):)?(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")
_SERVICE_KEYS = frozenset({"image", "build", "ports", "environment", "command", "expose"})


def _span(text: str) -> list[int]:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if last < first:
        return []
    if last - first >= MAX_RANGE:
        return [first, last]
    return list(range(first, last + 1))


def _publish(service: str, entry: Any) -> list[PortRef]:
    host_line = target_line = line_of(entry)
    text = scalar(entry)
    if text is not None:
        raw = text.strip()
        expanded, variables = interpolate(raw)
        match = _SHORT.match(expanded.strip())
        if not match:
            return []
        hosts = _span(match.group("host")) if match.group("host") else []
        targets = _span(match.group("target"))
    else:
        nodes = mapping(entry)
        fields = {k: scalar(v) for k, v in nodes.items()}
        raw = ", ".join(f"{k}: {v}" for k, v in fields.items())
        published, variables_p = interpolate(fields.get("published") or "")
        target, variables_t = interpolate(fields.get("target") or "")
        variables = variables_p + variables_t
        hosts = _span(published) if re.fullmatch(r"\d+(-\d+)?", published) else []
        targets = _span(target) if re.fullmatch(r"\d+(-\d+)?", target) else []
        host_line = line_of(nodes["published"]) if "published" in nodes else host_line
        target_line = line_of(nodes["target"]) if "target" in nodes else target_line
    refs: list[PortRef] = []
    for port in hosts:
        if valid_port(str(port)):
            refs.append(PortRef(port, host_line, "publish", variables, service, None, "host",
                                True, raw))
    for port in targets:
        if valid_port(str(port)):
            refs.append(PortRef(port, target_line, "publish", (), service, None, "container",
                                True, raw))
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


def _service(name: str, node: Any, names: frozenset[str]) -> list[PortRef]:
    fields = mapping(node)
    refs: list[PortRef] = []
    for entry in sequence(fields.get("ports")):
        refs.extend(_publish(name, entry))
    for entry in sequence(fields.get("expose")):
        for port in _span(text) if (text := (scalar(entry) or "").split("/")[0]).replace(
                "-", "").isdigit() else []:
            if valid_port(str(port)):
                refs.append(PortRef(port, line_of(entry), "expose", (), name, None, "container",
                                    True, f"expose {text}"))
    if "environment" in fields:
        refs.extend(_environment(name, fields["environment"], names))
    for key in ("healthcheck", "command", "entrypoint"):
        node_ = fields.get(key)
        if key == "healthcheck":
            node_ = mapping(node_).get("test")
        for text, line in _strings(node_) if node_ is not None else []:
            for ref in url_refs(text, line, kind="url", names=names, side="container"):
                # A URL on localhost inside the container is the service's own port.
                own = ref.owner is None
                refs.append(PortRef(ref.port, ref.line, "healthcheck" if key == "healthcheck"
                                    else "url", ref.keys, ref.owner or name, ref.path,
                                    "container", own, ref.text))
    return refs


def is_compose(root: Any) -> bool:
    """Whether a YAML document looks like a compose file (top-level services of containers)."""
    top = mapping(root)
    if "services" in top:
        return True
    return bool(top) and all(_SERVICE_KEYS & set(mapping(v)) for v in top.values())


def extract_compose(root: Any, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """Every port of a compose document; the seed's bare `name: {ports: ...}` form is accepted."""
    top = mapping(root)
    services = mapping(top["services"]) if "services" in top else top
    refs: list[PortRef] = []
    for name, node in services.items():
        refs.extend(_service(str(name), node, names))
    return refs
