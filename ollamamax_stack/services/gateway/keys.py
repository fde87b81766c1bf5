"""Typed app keys shared by the gateway and the hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ollamamax_stack.services.common.rate_limits import RateLimiter
    from ollamamax_stack.services.gateway.images import ImageFetcher
    from ollamamax_stack.services.routing.client import InferenceClient

INFERENCE: web.AppKey[InferenceClient] = web.AppKey("inference")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter")
IMAGES: web.AppKey[ImageFetcher] = web.AppKey("images")
