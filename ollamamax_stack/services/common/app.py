"""The app factory every service starts from: health, ready, metrics, JSON errors, auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ollamamax_stack.handoff.client import SLOT_ENV
from ollamamax_stack.handoff.slots import parse_program
from ollamamax_stack.services.common.apikeys import read_keys
from ollamamax_stack.services.common.auth import Authenticator, auth_middleware
from ollamamax_stack.services.common.capacity import connection_cap, websocket_cap
from ollamamax_stack.services.common.errors import error_middleware, plain_shape
from ollamamax_stack.services.common.guard import STATE_CHANGING, browser_guard
from ollamamax_stack.services.common.health import (
    Readiness,
    ServiceState,
    always_ready,
    health_handler,
    ready_handler,
)
from ollamamax_stack.services.common.keys import (
    AUTH,
    ERROR_SHAPE,
    HEALTH_EXTRA,
    METRICS,
    READINESS,
    SETTINGS,
    STATE,
    ErrorShape,
)
from ollamamax_stack.services.common.metrics import HttpMetrics, metrics_handler, metrics_middleware
from ollamamax_stack.services.common.redis_link import redis_link
from ollamamax_stack.services.common.redis_revocation import SharedRevocationStore
from ollamamax_stack.services.common.secret import ensure_secret, secret_path
from ollamamax_stack.services.common.serving import SERVER_NAME
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.common.sqlite_revocation import open_revocations

DEFAULT_BODY_LIMIT = 4 * 1024 * 1024
METRICS_PATH = "/metrics"


def make_authenticator(settings: ServiceSettings) -> Authenticator:
    """The stack's authenticator: keys from the environment, the secret from the run dir."""
    secret = ensure_secret(secret_path(settings.env, settings.run_dir))
    link = redis_link(settings)
    local = open_revocations(settings.run_dir)
    return Authenticator(read_keys(settings.env), secret, settings.name,
                         SharedRevocationStore(link, local) if link else local, trusted=local)


def worker_name(settings: ServiceSettings) -> str:
    """`gateway:0` for the slot `gateway.0a` or `gateway.0b`; the service's name outside one."""
    slot = parse_program(settings.get(SLOT_ENV))
    return slot.worker_name if slot is not None else settings.name


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME  # aiohttp's default names its version


def base_app(settings: ServiceSettings, *, authenticator: Authenticator,
             readiness: Callable[[], Awaitable[Readiness]] = always_ready,
             protected: tuple[str, ...] = (), websocket_paths: tuple[str, ...] = (),
             token_query_paths: tuple[str, ...] = (),
             error_shape: ErrorShape = plain_shape,
             state: ServiceState | None = None) -> web.Application:
    """An app with /health, /health/ready and /metrics, and the stack's middlewares.

    With API keys set, `/metrics` needs them too: it names every node's URL. Browsers may
    send `?token=` on `websocket_paths` and `token_query_paths` (they cannot set headers there).
    """
    limit = int(settings.number("OLLAMAMAX_MAX_BODY", DEFAULT_BODY_LIMIT))
    middlewares = [metrics_middleware, error_middleware, connection_cap,
                   browser_guard(settings, STATE_CHANGING),
                   auth_middleware((*protected, METRICS_PATH),
                                   (*websocket_paths, *token_query_paths))]
    if websocket_paths:
        middlewares.append(websocket_cap(websocket_paths))
    app = web.Application(client_max_size=limit, middlewares=middlewares)
    app.on_response_prepare.append(_server_header)
    app[SETTINGS] = settings
    app[METRICS] = HttpMetrics(worker=worker_name(settings))
    app[STATE] = state or ServiceState()
    app[AUTH] = authenticator
    app[READINESS] = readiness
    app[ERROR_SHAPE] = error_shape
    revocations = authenticator.revocations
    app[HEALTH_EXTRA] = {"store": lambda: revocations.name}
    if isinstance(revocations, SharedRevocationStore):
        app[HEALTH_EXTRA]["redis"] = revocations.link.health
        app.cleanup_ctx.append(revocations.link.lifecycle)
    app.router.add_get("/health", health_handler)
    app.router.add_get("/health/ready", ready_handler)
    app.router.add_get(METRICS_PATH, metrics_handler)
    return app
