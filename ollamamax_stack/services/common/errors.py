"""JSON errors: every failure leaves a service as a JSON body in the service's own shape."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ollamamax_stack.services.common.keys import ERROR_SHAPE
from ollamamax_stack.services.common.textsafe import hide_addresses, printable

log = logging.getLogger("ollamamax.services")

PARSED_BODY: web.RequestKey[dict[str, Any]] = web.RequestKey("parsed_body")
CODES = {400: "invalid_request_error", 401: "invalid_api_key", 403: "forbidden",
         404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
         429: "rate_limit_exceeded", 500: "internal_error", 502: "bad_gateway",
         503: "service_unavailable", 504: "gateway_timeout"}


class ApiError(Exception):
    """An error a handler answers with: HTTP status, message, and a machine-readable code."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.param = param
        self.retry_after = retry_after  # seconds, sent as `Retry-After` (a busy 503)


def plain_shape(request: web.Request, status: int, message: str, code: str) -> dict[str, Any]:
    """`{"error": "message"}`: Ollama's error shape, the default."""
    return {"error": message}


def authenticated(request: web.Request) -> bool:
    """Whether the caller proved who they are (internal addresses are shown only to them)."""
    from ollamamax_stack.services.common.auth import PRINCIPAL  # auth raises ApiError

    principal = request.get(PRINCIPAL)
    return principal is not None and principal.method != "off"


def names_internals(status: int, code: str | None) -> bool:
    """Whether an error's message may name node addresses: 5xx, and "model not found" (which
    lists the nodes it looked on)."""
    return status >= 500 or code == "model_not_found"


def error_response(request: web.Request, status: int, message: str, code: str | None = None,
                   param: str | None = None) -> web.Response:
    """A JSON error in the shape the app chose."""
    shape = request.app.get(ERROR_SHAPE, plain_shape)
    if names_internals(status, code) and not authenticated(request):
        message = hide_addresses(message)  # node addresses: for the log and for key holders
    message = printable(message)
    body = shape(request, status, message, code or CODES.get(status, "error"))
    if param is not None and isinstance(body.get("error"), dict):
        body["error"]["param"] = param
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn ApiError, aiohttp's HTTP errors and crashes into JSON errors."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        response = error_response(request, exc.status, exc.message, exc.code, exc.param)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 404:
            message = f"no route for {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            message = f"request body too large (limit {request.client_max_size} bytes)"
        return error_response(request, exc.status, message)
    except ConnectionResetError:
        raise  # the client left: nobody to answer
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(request, 500, "internal error (see the service log)")


class _NotFinite(ValueError):
    pass


def _constant(name: str) -> float:
    raise _NotFinite(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"{text} is out of range for a number")
    return value


# Made once: json.loads with hooks would build a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite)


def parse_json(raw: bytes) -> Any:
    """JSON as RFC 8259 has it: UTF-8, no NaN or Infinity, no number that overflows to one."""
    return _DECODER.decode(raw.decode())


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it (parsed once)."""
    if PARSED_BODY in request:
        return request[PARSED_BODY]
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"request body too large (limit {request.client_max_size} bytes)",
                       "request_too_large") from None
    if not raw:
        raise ApiError(400, "request body is empty: expected a JSON object")
    try:
        body = parse_json(raw)
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    request[PARSED_BODY] = body
    return body
