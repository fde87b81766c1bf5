"""Typed keys for what every service keeps in its aiohttp app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from ollamamax_stack.services.common.auth import Authenticator
    from ollamamax_stack.services.common.health import Readiness, ServiceState
    from ollamamax_stack.services.common.metrics import HttpMetrics
    from ollamamax_stack.services.common.settings import ServiceSettings

ErrorShape = Callable[[web.Request, int, str, str], dict[str, Any]]

SETTINGS: web.AppKey[ServiceSettings] = web.AppKey("settings")
METRICS: web.AppKey[HttpMetrics] = web.AppKey("metrics")
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
STATE: web.AppKey[ServiceState] = web.AppKey("state")
READINESS: web.AppKey[Callable[[], Awaitable[Readiness]]] = web.AppKey("readiness")
HEALTH_EXTRA: web.AppKey[dict[str, Any]] = web.AppKey("health_extra")
ERROR_SHAPE: web.AppKey[ErrorShape] = web.AppKey("error_shape")
