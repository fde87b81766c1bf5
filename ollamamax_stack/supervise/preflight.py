"""The pre-flight of `up`: the registry and host checks of `ports check`, blocking or not."""

from __future__ import annotations

from dataclasses import dataclass, field

from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise.config import missing_executable


@dataclass
class Preflight:
    """What stops `up` (errors) and what it only mentions (warnings)."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def preflight(registry: Registry, services: list[Service]) -> Preflight:
    """Registry checks, host checks of `services`, and each managed command's program."""
    from ollamamax_stack.ports.checks import check_host, check_registry

    result = Preflight()
    for finding in [*check_registry(registry), *check_host(registry, services)]:
        (result.errors if finding.level == "error" else result.warnings).append(finding)
    for service in services:
        if service.external:
            continue
        missing = missing_executable(registry, service)
        if missing is None:
            continue
        message = (f"{service.name}: its command {missing!r} is not installed "
                   f"(not found on PATH)")
        if service.optional:
            result.warnings.append(Finding("warning", "command-missing",
                                           message + "; optional: the stack runs degraded",
                                           service.name))
        else:
            result.errors.append(Finding("error", "command-missing", message, service.name))
    return result
