"""Typed app key of the hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ollamamax_stack.services.hub.state import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub")
