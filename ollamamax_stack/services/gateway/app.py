"""The gateway: OpenAI-compatible /v1, /auth, WebSocket /chat, /openapi.json, /docs, the page.

Ready when the inference service is ready; degraded when it is (its reasons, prefixed).
"""

from __future__ import annotations

from aiohttp import web

from ollamamax_stack.services.common.app import base_app
from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.keys import HEALTH_EXTRA
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.common.validation import request_validation
from ollamamax_stack.services.gateway import auth_api, docs, openai_api, responses_api
from ollamamax_stack.services.gateway.errors import openai_shape
from ollamamax_stack.services.gateway.images import ImageFetcher
from ollamamax_stack.services.gateway.keys import IMAGES, INFERENCE, LIMITER
from ollamamax_stack.services.gateway.limits import rate_limit_middleware
from ollamamax_stack.services.gateway.redis_limits import rate_limiter
from ollamamax_stack.services.gateway.requests import MODELS as REQUESTS
from ollamamax_stack.services.hub.app import attach_client, inference_client
from ollamamax_stack.services.hub.mount import CHAT_PATH, mount_chat
from ollamamax_stack.services.page import routes as page

PROTECTED = ("/v1", "/api", CHAT_PATH, "/auth/me", "/auth/revoke")


def create_app(settings: ServiceSettings, auth: Authenticator) -> web.Application:
    """The gateway's app."""
    client = inference_client(settings, auth)
    limiter = rate_limiter(auth, int(settings.number("OLLAMAMAX_RATE_LIMIT", 0)))
    app = base_app(settings, authenticator=auth, readiness=client.readiness,
                   protected=PROTECTED, websocket_paths=(CHAT_PATH,), error_shape=openai_shape)
    app.middlewares.append(rate_limit_middleware(limiter, ("/v1",)))
    app.middlewares.append(request_validation(REQUESTS))
    app[INFERENCE] = client
    app[LIMITER] = limiter
    app[IMAGES] = ImageFetcher(settings)
    app.cleanup_ctx.append(app[IMAGES].lifecycle)
    app[HEALTH_EXTRA]["rate_limit"] = lambda: {"store": limiter.name, "per_minute": limiter.limit}
    attach_client(app, client)
    openai_api.add_routes(app)
    responses_api.add_routes(app)
    auth_api.add_routes(app)
    docs.add_routes(app)
    mount_chat(app, settings, client)
    page.add_routes(app, settings)
    return app
