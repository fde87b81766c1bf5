"""Prometheus YAML: every scrape target `host:port`, with the job it belongs to."""

from __future__ import annotations

from typing import Any

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import is_local, valid_port
from ollamamax_stack.ports.extract.yamlnodes import line_of, mapping, scalar, sequence


def is_prometheus(root: Any) -> bool:
    """Whether a YAML document is a Prometheus configuration."""
    return "scrape_configs" in mapping(root)


def _targets(node: Any, job: str | None, names: frozenset[str], refs: list[PortRef]) -> None:
    fields = mapping(node)
    job = scalar(fields["job_name"]) if "job_name" in fields else job
    for key, value in fields.items():
        if key == "targets":
            for item in sequence(value):
                text = scalar(item) or ""
                host, _, port_text = text.rpartition(":")
                port = valid_port(port_text)
                if port is None:
                    continue
                if is_local(host):
                    refs.append(PortRef(port, line_of(item), "target", (), job, None, "host",
                                        False, text))
                elif host.lower() in names:
                    refs.append(PortRef(port, line_of(item), "target", (), host.lower(), None,
                                        "container", False, text))
        else:
            _targets(value, job, names, refs)
    for item in sequence(node):
        _targets(item, job, names, refs)


def extract_prometheus(root: Any, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """Scrape targets on local hosts (attributed by job name) or on service hosts."""
    refs: list[PortRef] = []
    _targets(root, None, names, refs)
    return refs
