"""How a failed call to a node or service reads in a log line or an error answer."""

from __future__ import annotations

import aiohttp


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed call: `connection refused`, not aiohttp's long repr."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {(exc.os_error.strerror or str(exc.os_error)).lower()}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected before answering"
    return str(exc) or type(exc).__name__
