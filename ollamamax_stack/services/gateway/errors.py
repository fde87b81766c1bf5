"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError


def error_type(status: int) -> str:
    """OpenAI's error `type` for a status."""
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    if status == 401:
        return "authentication_error"
    return "invalid_request_error"


def openai_shape(request: web.Request, status: int, message: str, code: str) -> dict[str, Any]:
    """The gateway's error body."""
    return {"error": {"message": message, "type": error_type(status), "param": None,
                      "code": code}}


def bad(message: str, param: str) -> ApiError:
    """A 400 in OpenAI's terms, naming the offending parameter."""
    return ApiError(400, message, "invalid_request_error", param=param)
