"""The hub (and the fallback): WebSocket `/chat`; ready when the inference service is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.app import base_app
from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.inference_client import InferenceClient
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.hub.mount import CHAT_PATH, mount_chat


def inference_client(settings: ServiceSettings, auth: Authenticator) -> InferenceClient:
    """A client of `$OLLAMAMAX_INFERENCE_URL`."""
    url = settings.url_of("inference")
    if not url:
        raise UsageError(f"{settings.name}: OLLAMAMAX_INFERENCE_URL is not set and the registry "
                         "has no inference service")
    return InferenceClient(url, auth)


def client_lifecycle(
        client: InferenceClient) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that opens and closes `client`."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await client.start()
        yield
        await client.stop()

    return lifecycle


def create_app(settings: ServiceSettings, auth: Authenticator) -> web.Application:
    """The hub's app."""
    client = inference_client(settings, auth)
    app = base_app(settings, authenticator=auth, readiness=client.readiness,
                   protected=(CHAT_PATH,), websocket_paths=(CHAT_PATH,))
    app.cleanup_ctx.append(client_lifecycle(client))
    mount_chat(app, settings, client)
    return app
