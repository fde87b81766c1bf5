"""`render frontend`: the front end's WebSocket endpoints and REST base URL, as JS and as JSON."""

from __future__ import annotations

import json

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.render.base import Rendering, header, template

JS, JSON = "endpoints.js", "endpoints.json"
API_BASE_KEY = "API_BASE"  # the env key that marks the service holding the REST API


def ws_url(registry: Registry, service: Service) -> str:
    """The service's WebSocket endpoint."""
    base = registry.url(service).replace("http", "ws", 1)
    return base + service.endpoints["ws"]


def api_service(registry: Registry) -> Service:
    """The service whose env keys include API_BASE: the REST API of the front end."""
    for service in registry.active:
        if any(API_BASE_KEY in keys for keys in service.env_key_map.values()):
            return service
    raise UsageError(f"render frontend: no active service has the env key {API_BASE_KEY}; "
                     f"add it to the REST API service's env_keys in {registry.source.name}")


def frontend_data(registry: Registry) -> dict[str, object]:
    """Endpoints in fallback order, the REST base and every HTTP service's URL."""
    return {
        "endpoints": [ws_url(registry, s) for s in registry.active if "ws" in s.endpoints],
        "apiBase": registry.url(api_service(registry)),
        "services": {s.name: registry.url(s) for s in registry.active
                     if s.scheme in ("http", "https")},
    }


def render_frontend(registry: Registry) -> Rendering:
    """endpoints.js (an ES module) and endpoints.json with the same data."""
    data = frontend_data(registry)
    endpoints = data["endpoints"]
    services = data["services"]
    assert isinstance(endpoints, list) and isinstance(services, dict)
    js = template("frontend", "endpoints.js.template").substitute(
        header=header("frontend", registry.source, prefix="// "),
        endpoints="\n".join(f"  {json.dumps(u)}," for u in endpoints),
        api_base=json.dumps(data["apiBase"]),
        services="\n".join(f"  {json.dumps(n)}: {json.dumps(u)}," for n, u in services.items()),
    )
    return {JS: js, JSON: json.dumps(data, indent=2) + "\n"}
