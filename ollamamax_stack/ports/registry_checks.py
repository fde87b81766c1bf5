"""Checks of the registry itself: privileged ports, the kernel's ephemeral range, duplicates."""

from __future__ import annotations

from pathlib import Path

from ollamamax_stack.ports.findings import Finding, display_path
from ollamamax_stack.registry.graph import find_cycle
from ollamamax_stack.registry.model import Registry

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PRIVILEGED_BELOW = 1024


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int] | None:
    """The kernel's range for outgoing connections' local ports, or None where it is not known."""
    try:
        low, high = path.read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def check_registry(registry: Registry) -> list[Finding]:
    """Problems of the registry's ports that the loader lets through, for every service."""
    findings: list[Finding] = []
    source = display_path(registry.source)
    ephemeral = ephemeral_range()
    owners: dict[int, str] = {}
    for service in registry.services.values():
        for port_name, port in service.port_map.items():
            label = service.name if port_name == "main" else f"{service.name}.{port_name}"
            if port < PRIVILEGED_BELOW and not service.privileged:
                findings.append(Finding(
                    "error", "privileged",
                    f"{label} uses privileged port {port}: binding it needs root; set "
                    "`privileged = true` or choose a port from 1024 up",
                    service.name, port, source))
            if ephemeral and ephemeral[0] <= port <= ephemeral[1]:
                findings.append(Finding(
                    "warning", "ephemeral",
                    f"{label} uses port {port}, inside the kernel's ephemeral range "
                    f"{ephemeral[0]}-{ephemeral[1]}: an outgoing connection may take it first",
                    service.name, port, source))
            other = owners.setdefault(port, service.name)
            if other != service.name:
                findings.append(Finding(
                    "error", "duplicate-port",
                    f"port {port} is given to both {other} and {service.name}",
                    service.name, port, source))
        for dep in service.depends_on:
            if dep not in registry.services:
                findings.append(Finding(
                    "error", "unknown-dependency",
                    f"{service.name} depends on unknown service {dep!r}", service.name, None,
                    source))
    cycle = find_cycle({s.name: list(s.depends_on) for s in registry.services.values()})
    if cycle:
        findings.append(Finding("error", "dependency-cycle",
                                f"dependency cycle: {' -> '.join(cycle)}", cycle[0], None, source))
    return findings
