"""Prometheus YAML: every scrape target `host:port`, with the job it belongs to."""

from __future__ import annotations

from typing import Any

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import host_side, valid_port
from ollamamax_stack.ports.extract.yamlnodes import line_of, mapping, scalar, sequence


def is_prometheus(root: Any) -> bool:
    """Whether a YAML document is a Prometheus configuration."""
    return "scrape_configs" in mapping(root)


def _targets(node: Any, names: frozenset[str], refs: list[PortRef]) -> None:
    fields = mapping(node)
    for key, value in fields.items():
        if key == "targets":
            for item in sequence(value):
                text = scalar(item) or ""
                host, _, port_text = text.rpartition(":")
                port = valid_port(port_text)
                if port is None:
                    continue
                # The job's name is a label, not evidence (a `redis` job scrapes an exporter).
                where = host_side(host, "host")
                if where is not None and (where[1] is None or where[1] in names):
                    refs.append(PortRef(port, line_of(item), "target", (), where[1], None,
                                        where[0], False, text))
        else:
            _targets(value, names, refs)
    for item in sequence(node):
        _targets(item, names, refs)


def extract_prometheus(root: Any, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """Scrape targets on local hosts or on service hosts."""
    refs: list[PortRef] = []
    _targets(root, names, refs)
    return refs
