"""Env files against the registry: a key that names a registry port must say the same port.

The keys that name a port are the ones the stack sets itself (`PORT`, `PORT_<NAME>`) and every
service's `env_keys` (`GATEWAY_PORT`, `REDIS_URL`, ...). The files describe the stack at its
own ports, as drift files do, so under `--offset` they are compared with the unshifted ports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.ports.findings import Finding, display_path
from ollamamax_stack.registry.envfiles import file_environment
from ollamamax_stack.registry.environ import env_name
from ollamamax_stack.registry.model import Registry, Service

_HOST_PORT = re.compile(r"^[^\s/:@]+:(\d{1,5})$")  # localhost:6379
_GENERIC = {"PORT"}  # a key every service reads as its own port, not as another's


@dataclass(frozen=True)
class PortKey:
    """A key that names one registry port: whose it is and the number the files must say."""

    service: str
    label: str  # `api` or `api.admin`
    port: int


def _unshifted(registry: Registry, service: Service, port: int) -> int:
    return port - registry.offset if service.shift else port


def port_keys(registry: Registry, service: Service) -> dict[str, PortKey]:
    """The env keys a file given to `service` may not contradict, with the port each names."""
    keys: dict[str, PortKey] = {}
    for other in registry.services.values():
        for port_name, names in other.env_key_map.items():
            label = other.name if port_name == "main" else f"{other.name}.{port_name}"
            for key in names:
                if key not in _GENERIC:
                    keys[key] = PortKey(other.name, label, _unshifted(
                        registry, other, other.port_map[port_name]))
    keys["PORT"] = PortKey(service.name, service.name,
                           _unshifted(registry, service, service.primary_port))
    if service.named_ports:
        for port_name, port in service.port_map.items():
            keys[f"PORT_{env_name(port_name)}"] = PortKey(
                service.name, f"{service.name}.{port_name}", _unshifted(registry, service, port))
    return keys


def value_port(value: str) -> int | None:
    """The port a value names (`13100`, `localhost:13100`, `http://h:13100/v1`), else None."""
    from urllib.parse import urlsplit

    text = value.strip()
    if text.isdigit():
        return int(text) if len(text) <= 5 else None
    if "://" in text:
        try:
            return urlsplit(text).port
        except ValueError:
            return None
    match = _HOST_PORT.match(text)
    return int(match.group(1)) if match else None


def check_env_files(registry: Registry) -> list[Finding]:
    """Each env file a managed service reads that is missing, unreadable, or names a wrong port."""
    findings: list[Finding] = []
    seen: set[tuple[str, int, str]] = set()
    for service in registry.managed:
        try:
            entries = file_environment(registry, service)
        except RegistryError as exc:
            # The error's own text names the file (and line): one line wherever it is printed.
            if (str(exc), 0, "") not in seen:
                seen.add((str(exc), 0, ""))
                findings.append(Finding("error", "env-file", str(exc), service.name))
            continue
        keys = port_keys(registry, service)
        for key, entry in entries.items():
            wanted = keys.get(key)
            said = value_port(entry.value) if wanted else None
            if wanted is None or said is None or said == wanted.port:
                continue
            shown = display_path(entry.file)
            if (shown, entry.line, key) in seen:
                continue  # one stack-wide file read by many services: said once
            seen.add((shown, entry.line, key))
            findings.append(Finding(
                "error", "env-file-port",
                f"{key}={entry.value} says port {said}, but the registry gives {wanted.label} "
                f"port {wanted.port} ({display_path(registry.source)}): the registry is the "
                f"truth; change the line to {wanted.port} or remove it",
                service.name, said, shown, entry.line, expected=wanted.port))
    return findings
