"""Start one of the stack's own services by name, from the registry and the environment."""

from __future__ import annotations

from collections.abc import Callable

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.services.common.app import make_authenticator
from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.runner import Listening, run
from ollamamax_stack.services.common.settings import ServiceSettings, build_settings

AppsFactory = Callable[[ServiceSettings, Authenticator], list[Listening]]


def _inference(settings: ServiceSettings, auth: Authenticator) -> list[Listening]:
    from ollamamax_stack.services.inference.app import create_apps
    return create_apps(settings, auth)


def _gateway(settings: ServiceSettings, auth: Authenticator) -> list[Listening]:
    from ollamamax_stack.services.gateway.app import create_app
    return [Listening("main", create_app(settings, auth))]


def _hub(settings: ServiceSettings, auth: Authenticator) -> list[Listening]:
    from ollamamax_stack.services.hub.app import create_app
    return [Listening("main", create_app(settings, auth))]


# name -> (its port names when run without a registry, the factory of its apps)
SERVICES: dict[str, tuple[list[str], AppsFactory]] = {
    "gateway": (["main"], _gateway),
    "hub": (["main"], _hub),
    "fallback": (["main"], _hub),  # the same program as the hub, on its own port
    "inference": (["api", "web"], _inference),
}


def serve(service: str, registry: Registry | None) -> None:
    """Run `service` in the foreground until SIGTERM/SIGINT."""
    if service not in SERVICES:
        raise UsageError(f"unknown service {service!r}: serve one of {', '.join(SERVICES)}")
    port_names, factory = SERVICES[service]
    settings = build_settings(service, port_names, registry)
    auth = make_authenticator(settings)
    run(settings, factory(settings, auth))
