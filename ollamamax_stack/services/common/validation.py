"""Request bodies checked against pydantic models of the API's request shapes, before handlers.

The models allow unknown fields (a newer client's options pass through untouched); what
they check is the type of every field they know, down to each message of a chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.common.textsafe import printable

# Parts of a pydantic error location that name a member of a union, not a field.
TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _is_field(part: int | str) -> bool:
    return isinstance(part, int) or not (part in TYPE_TAGS or "[" in part or part[:1].isupper()
                                         or part.startswith("function-"))


def _where(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def invalid(exc: ValidationError) -> ApiError:
    """A 400 naming the first wrong field, e.g. `'messages[0]': Input should be an object`."""
    error = exc.errors(include_url=False, include_input=False)[0]
    location = tuple(p for p in error["loc"] if _is_field(p))
    where = _where(location) or "body"
    param = str(location[0]) if location else None
    return ApiError(400, f"{printable(where)!r}: {printable(error['msg'])}", param=param)


def validate(model: type[BaseModel], body: Mapping[str, Any]) -> None:
    """Raise a 400 ApiError when `body` does not fit `model`."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from None


def request_validation(models: Mapping[str, type[BaseModel]]) -> Any:
    """A middleware validating the JSON body of POSTs to the paths in `models`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        model = models.get(request.path) if request.method == "POST" else None
        if model is not None:
            validate(model, await json_body(request))  # parsed once, kept for the handler
        return await handler(request)

    return middleware
