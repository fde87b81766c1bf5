"""The environment each managed service receives: its ports and every service's URL."""

from __future__ import annotations

from ollamamax_stack.registry.model import Registry, Service


def env_name(service_name: str) -> str:
    """`inference-web` -> `INFERENCE_WEB`: a service name as it appears in env keys."""
    return service_name.upper().replace("-", "_")


def stack_urls(registry: Registry) -> dict[str, str]:
    """`OLLAMAMAX_<SERVICE>_URL` (and `_<PORT>_URL` for named ports) for every service."""
    urls: dict[str, str] = {}
    for service in registry.services.values():
        urls[f"OLLAMAMAX_{env_name(service.name)}_URL"] = registry.url(service)
        if service.named_ports:
            for port_name in service.port_map:
                key = f"OLLAMAMAX_{env_name(service.name)}_{env_name(port_name)}_URL"
                urls[key] = registry.url(service, port_name)
    return urls


def service_environment(registry: Registry, service: Service) -> dict[str, str]:
    """`PORT`, `PORT_<NAME>`, `HOST`, stack URLs and the run directory, for one service."""
    env = {
        "PORT": str(service.primary_port),
        "HOST": registry.bind_host(service),
        "OLLAMAMAX_SERVICE": service.name,
        "OLLAMAMAX_STACK": registry.stack.name,
        "OLLAMAMAX_RUN_DIR": str(registry.run_dir),
        "OLLAMAMAX_CONFIG": str(registry.source),
        "OLLAMAMAX_OFFSET": str(registry.offset),
        "OLLAMAMAX_PROFILE": registry.profile,
    }
    if service.named_ports:
        for port_name, port in service.port_map.items():
            env[f"PORT_{env_name(port_name)}"] = str(port)
    env.update(stack_urls(registry))
    env.update(service.env)  # the registry's own `env` for the service has the last word
    return env
