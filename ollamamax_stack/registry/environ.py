"""The environment each managed service receives: its ports, the profile's URLs, secrets' paths."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ollamamax_stack.markers import RUN_DIR_ENV, SERVICE_ENV
from ollamamax_stack.registry.model import Registry, Service

# Dependents whose password the stack generates: (env key of its file, file in the run dir).
PASSWORD_FILES = {"redis": ("OLLAMAMAX_REDIS_PASSWORD_FILE", "redis.password"),
                  "postgres": ("OLLAMAMAX_POSTGRES_PASSWORD_FILE", "postgres.password")}


def env_name(service_name: str) -> str:
    """`inference-web` -> `INFERENCE_WEB`: a service name as it appears in env keys."""
    return service_name.upper().replace("-", "_")


def password_file(dependent: str, env: Mapping[str, str], run_dir: Path) -> Path:
    """Where `dependent`'s generated password lives: its env key, else the run dir's file."""
    key, name = PASSWORD_FILES[dependent]
    return Path(env[key]) if env.get(key) else run_dir / name


def stack_urls(registry: Registry) -> dict[str, str]:
    """`OLLAMAMAX_<SERVICE>_URL` (and `_<PORT>_URL`) for the services of the active profile.

    Only those: a URL of a service that is not running names a port anyone may listen on.
    The same for every service of a registry: made once per registry (a registry is frozen),
    not once per service (60 services: 3,600 URLs for supervisord.conf alone).
    """
    if _Made.registry is not registry:
        _Made.registry, _Made.urls = registry, _stack_urls(registry)
    return dict(_Made.urls)


class _Made:
    """The registry whose stack URLs were made last, and those URLs."""

    registry: Registry | None = None
    urls: dict[str, str] = {}  # one slot, replaced whole


def _stack_urls(registry: Registry) -> dict[str, str]:
    urls: dict[str, str] = {}
    for service in registry.active:
        if not service.port_map:
            continue  # a task without a port: nothing to reach
        urls[f"OLLAMAMAX_{env_name(service.name)}_URL"] = registry.url(service)
        if service.named_ports:
            for port_name in service.port_map:
                key = f"OLLAMAMAX_{env_name(service.name)}_{env_name(port_name)}_URL"
                urls[key] = registry.url(service, port_name)
    return urls


def model_lists(registry: Registry) -> dict[str, str]:
    """`OLLAMAMAX_<SERVICE>_MODELS` (comma-separated) for each active service with `models`."""
    return {f"OLLAMAMAX_{env_name(s.name)}_MODELS": ",".join(s.models)
            for s in registry.active if s.models}


def service_environment(registry: Registry, service: Service) -> dict[str, str]:
    """The env files' keys, then `PORT`, `PORT_<NAME>`, `HOST`, stack URLs and the run directory.

    What the stack sets wins over the files (a port key that disagrees is refused before `up`
    starts anything: ports/envfile_checks.py), and the registry's `env` wins over both.
    """
    from ollamamax_stack.registry.envfiles import file_environment

    files = {k: e.value for k, e in file_environment(registry, service).items()}
    env = {
        "HOST": registry.bind_host(service),
        SERVICE_ENV: service.name,
        "OLLAMAMAX_STACK": registry.stack.name,
        RUN_DIR_ENV: str(registry.run_dir),
        "OLLAMAMAX_CONFIG": str(registry.source),
        "OLLAMAMAX_OFFSET": str(registry.offset),
        "OLLAMAMAX_PROFILE": registry.profile,
    }
    if service.port_map:  # a task may have none
        env = {"PORT": str(service.primary_port), **env}
    if service.named_ports:
        for port_name, port in service.port_map.items():
            env[f"PORT_{env_name(port_name)}"] = str(port)
    env.update(stack_urls(registry))
    env.update(model_lists(registry))
    for dependent, (key, name) in PASSWORD_FILES.items():
        entry = registry.services.get(dependent)
        if entry is not None and entry.in_profile(registry.profile):
            env[key] = str(registry.run_dir / name)
    env.update(service.env)  # the registry's own `env` for the service has the last word
    return {**files, **env}
