"""The hub (and the fallback): WebSocket `/chat` and the chat page; ready when inference is."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.app import base_app
from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.keys import HEALTH_EXTRA, METRICS
from ollamamax_stack.services.common.redis_limits import rate_limiter
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.hub.mount import CHAT_PATH, mount_chat
from ollamamax_stack.services.inference.metrics import PoolCollector, QueueCollector
from ollamamax_stack.services.page import routes as page
from ollamamax_stack.services.routing.client import InferenceClient
from ollamamax_stack.services.routing.follower import WAIT
from ollamamax_stack.services.routing.policy import scheduling_policy
from ollamamax_stack.services.routing.table import SUSPECT_FOR


def inference_client(settings: ServiceSettings, auth: Authenticator) -> InferenceClient:
    """A client of `$OLLAMAMAX_INFERENCE_URL`."""
    url = settings.url_of("inference")
    if not url:
        raise UsageError(f"{settings.name}: OLLAMAMAX_INFERENCE_URL is not set and the registry "
                         "has no inference service")
    return InferenceClient(
        url, auth, connect_timeout=settings.number("OLLAMAMAX_CONNECT_TIMEOUT", 3.0),
        read_timeout=settings.number("OLLAMAMAX_READ_TIMEOUT", 300.0),
        suspect_for=settings.number("OLLAMAMAX_SUSPECT_FOR", SUSPECT_FOR),
        wait=settings.number("OLLAMAMAX_ROUTES_WAIT", WAIT),
        policy=scheduling_policy(settings))


def attach_client(app: web.Application, client: InferenceClient) -> None:
    """Open and close `client` with the app; its routing in /health, its nodes in /metrics."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await client.start()
        yield
        await client.stop()

    app.cleanup_ctx.append(lifecycle)
    app[HEALTH_EXTRA]["routing"] = client.routing
    app[METRICS].registry.register(PoolCollector(client.table))
    app[METRICS].registry.register(QueueCollector(client.dispatcher.queue))


def create_app(settings: ServiceSettings, auth: Authenticator) -> web.Application:
    """The hub's app."""
    client = inference_client(settings, auth)
    app = base_app(settings, authenticator=auth, readiness=client.readiness,
                   protected=(CHAT_PATH,), websocket_paths=(CHAT_PATH,))
    attach_client(app, client)
    # No limit of the hub's own: only keys created with `--rate-limit` are counted here.
    mount_chat(app, settings, client, rate_limiter(auth, 0))
    page.add_routes(app, settings)  # the chat page, also while the gateway is down
    return app
