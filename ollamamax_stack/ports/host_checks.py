"""Checks against this host: managed ports must be free to bind, external services listening."""

from __future__ import annotations

import errno

from ollamamax_stack import hostports as host
from ollamamax_stack.handoff.slots import HOLDER_PROGRAM
from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.registry.model import Registry, Service

_WILDCARDS = {"0.0.0.0", "::", ""}


def _conflicts(bind: str, listener: host.Listener) -> bool:
    # A wildcard on either side takes the port on every address of that family (and IPv6 `::`
    # usually takes IPv4 too), so only two distinct concrete addresses can coexist.
    return bind in _WILDCARDS or listener.address in _WILDCARDS or listener.address == bind


def holders(bind: str, port: int) -> list[host.Listener]:
    """The listeners that keep `bind:port` from being bound (every listener when none match)."""
    found = host.who(port)
    return [item for item in found if _conflicts(bind, item)] or found


def _busy_finding(registry: Registry, service: Service, bind: str, port: int,
                  running_ok: bool) -> Finding:
    held = holders(bind, port)
    if not held:
        return Finding("error", "port-unbindable",
                       f"{service.name} cannot bind {bind}:{port} and no listener is visible "
                       "(permission denied, or a process of another network namespace)",
                       service.name, port)
    # The stack's socket holder keeps its services' ports bound while they restart.
    ours = (service.name, HOLDER_PROGRAM)
    if running_ok and all(item.owned_by(registry.run_dir) and item.service in ours
                          for item in held):
        return Finding("warning", "stack-running",
                       f"{service.name} port {port} is served by this stack's running "
                       f"{service.name} ({held[0].describe()})", service.name, port)
    if any(item.owned_by(registry.run_dir) for item in held):
        return Finding("error", "port-held-by-stack",
                       f"{service.name} port {port} is held by this stack ({held[0].describe()}); "
                       "run `ollamamax down` first", service.name, port)
    names = "; ".join(item.describe() for item in held)
    return Finding("error", "port-in-use",
                   f"{service.name} port {port} on {bind} is in use by {names}",
                   service.name, port)


def check_host(registry: Registry, services: list[Service] | None = None, *,
               running_ok: bool = False) -> list[Finding]:
    """Whether each managed port can be bound and each external service answers (active profile).

    With `running_ok`, a port served by this stack's own running service is a warning, not an
    error: `ports check` beside a running stack. `up` leaves it off: a port it is about to
    bind must be free, whoever holds it.
    """
    findings: list[Finding] = []
    for service in registry.active if services is None else services:
        bind = registry.bind_host(service)
        for port in service.port_map.values():
            if service.external:
                if not host.listening(registry.connect_host(service), port):
                    findings.append(Finding(
                        "warning", "external-down",
                        f"external service {service.name} is not listening on "
                        f"{registry.connect_host(service)}:{port}"
                        + (" (optional: the stack runs degraded)" if service.optional else ""),
                        service.name, port))
                continue
            try:
                free = host.bindable(bind, port)
            except OSError as exc:
                code = errno.errorcode.get(exc.errno or 0, "error")
                findings.append(Finding(
                    "error", "bind-failed",
                    f"{service.name} cannot bind {bind}:{port}: {exc.strerror or code}",
                    service.name, port))
                continue
            if not free:
                findings.append(_busy_finding(registry, service, bind, port, running_ok))
    return findings
