"""`/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.gateway import sse, translate
from ollamamax_stack.services.gateway.keys import INFERENCE
from ollamamax_stack.services.routing.client import UpstreamError


def json_answer(body: dict[str, Any]) -> web.Response:
    """A whole answer, encoded once by orjson (compact, bytes, no str round trip)."""
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _created(stamp: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


async def _model_list(request: web.Request) -> list[dict[str, Any]]:
    tags = await request.app[INFERENCE].tags()
    return [{"id": m.get("name"), "object": "model", "created": _created(m.get("modified_at")),
             "owned_by": "ollamamax"} for m in tags.get("models", [])]


async def list_models(request: web.Request) -> web.Response:
    """`GET /v1/models`."""
    return web.json_response({"object": "list", "data": await _model_list(request)})


async def get_model(request: web.Request) -> web.Response:
    """`GET /v1/models/{model}`."""
    wanted = request.match_info["model"]
    names = {wanted, wanted if ":" in wanted else f"{wanted}:latest"}
    for model in await _model_list(request):
        if model["id"] in names:
            return web.json_response(model)
    raise ApiError(404, f"the model '{wanted}' does not exist", "model_not_found", "model")


async def _stream(request: web.Request, path: str, upstream_body: dict[str, Any],
                  maker: translate.ChunkMaker, usage: bool) -> web.StreamResponse:
    chat = maker.chat
    async with request.app[INFERENCE].stream(path, upstream_body) as answers:
        # Headers go out only now: errors before the first byte stay real HTTP errors.
        response = await sse.open_events(request)
        final: dict[str, Any] = {}
        try:
            async for answer in answers:
                text = (answer.get("message") or {}).get("content", "") if chat else (
                    answer.get("response", ""))
                if answer.get("done"):
                    final = answer
                    if text:
                        await sse.send(response, maker.piece(text))
                    break
                if text or not maker.sent_role:
                    await sse.send(response, maker.piece(text))
        except UpstreamError as exc:
            await sse.send(response, {"error": {"message": exc.message,
                                                "type": "server_error", "code": exc.code}})
            return response
        await sse.send(response, maker.piece("", translate.finish_reason(final)))
        if usage:
            await sse.send(response, maker.usage(final))
        await sse.send(response, sse.DONE)
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`, whole or streamed."""
    body = await json_body(request)
    upstream = translate.chat_request(body)
    model = upstream["model"]
    if upstream["stream"]:
        return await _stream(request, "/api/chat", upstream, translate.ChunkMaker(model),
                             translate.include_usage(body))
    answer = await request.app[INFERENCE].call("/api/chat", upstream)
    return json_answer(translate.chat_completion(model, answer))


async def completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/completions`, whole or streamed."""
    body = await json_body(request)
    upstream = translate.completion_request(body)
    model = upstream["model"]
    if upstream["stream"]:
        return await _stream(request, "/api/generate", upstream,
                             translate.ChunkMaker(model, chat=False),
                             translate.include_usage(body))
    answer = await request.app[INFERENCE].call("/api/generate", upstream)
    return json_answer(translate.text_completion(model, answer))


async def embeddings(request: web.Request) -> web.Response:
    """`POST /v1/embeddings`."""
    body = await json_body(request)
    upstream = translate.embed_request(body)
    answer = await request.app[INFERENCE].call("/api/embed", upstream)
    return json_answer(translate.embeddings(upstream["model"], answer,
                                            str(body.get("encoding_format", "float"))))


def add_routes(app: web.Application) -> None:
    """Mount the OpenAI-compatible API."""
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)


