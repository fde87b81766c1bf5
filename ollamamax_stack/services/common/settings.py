"""A service's settings: the registry's environment for it, overlaid by the process environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ollamamax_stack import __version__
from ollamamax_stack.errors import UsageError
from ollamamax_stack.markers import RUN_DIR_ENV
from ollamamax_stack.registry.environ import env_name, service_environment
from ollamamax_stack.registry.model import Registry

DEFAULT_HOST = "127.0.0.1"
# The services that serve the chat page, in the order its clients fall back (port document).
FRONT_ENDS = ("gateway", "hub", "fallback")
CHAT_PATH = "/chat"  # the WebSocket of the hub's protocol, on every front end
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ServiceSettings:
    """Everything a service reads at start: where to listen, whom to call, whom to let in."""

    name: str
    host: str
    ports: dict[str, int]
    env: Mapping[str, str]
    run_dir: Path
    cors: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # Host names accepted beside the local ones
    # Where the stack's own chat page comes from: it may open /chat on every front end.
    page_origins: list[str] = field(default_factory=list)
    version: str = __version__

    @property
    def port(self) -> int:
        """The first (primary) port."""
        return next(iter(self.ports.values()))

    def url_of(self, service: str) -> str | None:
        """`OLLAMAMAX_<SERVICE>_URL`: where another service of the stack answers."""
        return self.env.get(f"OLLAMAMAX_{env_name(service)}_URL")

    def get(self, key: str, default: str = "") -> str:
        """An environment value, or the default when unset or empty."""
        return self.env.get(key) or default

    def number(self, key: str, default: float) -> float:
        """A numeric environment value; a bad one is a usage error that names the key."""
        raw = self.env.get(key)
        if not raw:
            return default
        try:
            return float(raw)
        except ValueError:
            raise UsageError(f"environment variable {key}={raw!r} is not a number") from None


def _port(env: Mapping[str, str], key: str) -> int:
    raw = env.get(key, "")
    try:
        port = int(raw)
    except ValueError:
        raise UsageError(f"environment variable {key}={raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"environment variable {key}={port} is out of range 0-65535")
    return port


def _ports(env: Mapping[str, str], names: list[str]) -> dict[str, int]:
    if "PORT" not in env and not any(f"PORT_{env_name(n)}" in env for n in names):
        raise UsageError("no port to listen on: set PORT (or run with a registry: --config FILE)")
    ports: dict[str, int] = {}
    for index, name in enumerate(names):
        key = f"PORT_{env_name(name)}"
        if key in env:
            ports[name] = _port(env, key)
        elif index == 0:
            ports[name] = _port(env, "PORT")
        else:
            raise UsageError(f"no port for {name!r}: set {key}")
    return ports


def build_settings(service: str, port_names: list[str], registry: Registry | None,
                   environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """Settings for `service`: `service_environment(registry, service)` overlaid by `environ`."""
    env: dict[str, str] = {}
    cors: list[str] = []
    hosts: list[str] = []
    names: list[str] = []
    run_dir = Path(".ollamamax")
    if registry is not None and service in registry.services:
        entry = registry.services[service]
        env.update(service_environment(registry, entry))
        cors = list(entry.cors)
        hosts = [*registry.stack.hosts, *entry.hosts]
        # Containers and proxies reach a service by its registry names (compose, nginx).
        names = [entry.name.lower(), *(n.lower() for n in entry.compose_names)]
        run_dir = registry.run_dir
        if entry.named_ports:
            port_names = list(entry.port_map)
    env.update(os.environ if environ is None else environ)
    if env.get("OLLAMAMAX_CORS"):
        cors = [o.strip() for o in env["OLLAMAMAX_CORS"].split(",") if o.strip()]
    if env.get("OLLAMAMAX_HOSTS"):
        hosts = [h.strip().lower() for h in env["OLLAMAMAX_HOSTS"].split(",") if h.strip()]
    if env.get(RUN_DIR_ENV):
        run_dir = Path(env[RUN_DIR_ENV])
    return ServiceSettings(name=service, host=env.get("HOST") or DEFAULT_HOST,
                           ports=_ports(env, port_names), env=env, run_dir=run_dir, cors=cors,
                           hosts=[*hosts, *names], page_origins=page_origins(env))


def page_origins(env: Mapping[str, str]) -> list[str]:
    """The origins of the front ends' URLs (`OLLAMAMAX_<FRONT END>_URL`), loopback by both names.

    The page loaded from the gateway falls back to the hub's /chat: a cross-origin socket
    that only the stack's own page may open.
    """
    origins: list[str] = []
    for name in FRONT_ENDS:
        url = env.get(f"OLLAMAMAX_{env_name(name)}_URL")
        if not url:
            continue
        parts = urlsplit(url)
        if not parts.hostname:
            continue
        hosts = LOOPBACK_NAMES if parts.hostname in LOOPBACK_NAMES else (parts.hostname,)
        port = f":{parts.port}" if parts.port else ""
        origins.extend(f"{parts.scheme}://{host}{port}" for host in hosts)
    return origins


def chat_url(base: str) -> str:
    """The `/chat` WebSocket URL of a front end's base URL."""
    return (base.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/")
            + CHAT_PATH)
