"""Put `/chat` on an app (the hub's own, or the gateway's) with its lifecycle and drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from ollamamax_stack.services.common.keys import METRICS
from ollamamax_stack.services.common.runner import DEFAULT_DRAIN
from ollamamax_stack.services.common.settings import CHAT_PATH, ServiceSettings
from ollamamax_stack.services.hub.connection import chat_socket
from ollamamax_stack.services.hub.keys import HUB
from ollamamax_stack.services.hub.state import Hub, HubMetrics
from ollamamax_stack.services.hub.watcher import NodesWatcher
from ollamamax_stack.services.routing.client import InferenceClient

__all__ = ["CHAT_PATH", "mount_chat"]


def mount_chat(app: web.Application, settings: ServiceSettings,
               inference: InferenceClient) -> Hub:
    """Serve the chat protocol at /chat on `app`; the caller starts and stops `inference`."""
    hub = Hub(inference=inference, watcher=NodesWatcher(inference),
              metrics=HubMetrics(app[METRICS].registry),
              max_message=int(settings.number("OLLAMAMAX_WS_MAX_MESSAGE", 1024 * 1024)),
              max_chats=int(settings.number("OLLAMAMAX_WS_MAX_CHATS", 32)))
    drain = settings.number("OLLAMAMAX_DRAIN_TIMEOUT", DEFAULT_DRAIN)
    app[HUB] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.watcher.start()
        yield
        await hub.watcher.stop()

    async def on_shutdown(app: web.Application) -> None:
        # Let running answers finish (up to the drain timeout), then say goodbye.
        hub.draining = True
        if hub.tasks:
            await asyncio.wait(list(hub.tasks), timeout=drain)
        for connection in list(hub.connections):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY,
                                      message=b"server shutting down")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get(CHAT_PATH, chat_socket)
    return hub
