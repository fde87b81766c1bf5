"""Typed app keys of the inference service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ollamamax_stack.services.inference.pool import NodePool
    from ollamamax_stack.services.inference.proxy import Proxy

POOL: web.AppKey[NodePool] = web.AppKey("pool")
PROXY: web.AppKey[Proxy] = web.AppKey("proxy")
