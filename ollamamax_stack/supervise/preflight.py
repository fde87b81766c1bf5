"""The pre-flight of `up`: the registry and host checks of `ports check`, blocking or not."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise.config import missing_executable

DRIFT_SHOWN = 5  # drift lines `up` shows before pointing at `ports check`


@dataclass
class Preflight:
    """What stops `up` (errors) and what it only mentions (warnings)."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def preflight(registry: Registry, services: list[Service]) -> Preflight:
    """Registry and host checks of `services`, each managed command's program, and drift.

    Drift is shown but never blocks: a stale compose file must not stop a laptop stack.
    """
    from ollamamax_stack.ports.checks import check_drift, check_host, check_registry
    from ollamamax_stack.ports.envfile_checks import check_env_files

    result = Preflight()
    for finding in [*check_registry(registry), *check_env_files(registry),
                    *check_host(registry, services)]:
        if finding.code == "external-down":
            continue  # the start probes external services itself and says so in their line
        (result.errors if finding.level == "error" else result.warnings).append(finding)
    # The drift files describe the stack at its own ports; an offset stack is a side-by-side
    # copy whose every port would "drift", so only the unshifted stack is compared.
    drift = check_drift(registry) if registry.offset == 0 else []
    for finding in drift[:DRIFT_SHOWN]:
        where = f"{finding.where}: " if finding.where else ""
        result.warnings.append(replace(finding, level="warning",
                                       message=f"{where}{finding.message}"))
    if len(drift) > DRIFT_SHOWN:
        result.warnings.append(Finding("warning", "drift", f"... and {len(drift) - DRIFT_SHOWN} "
                                       "more drift findings: run `ollamamax ports check`"))
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
