"""`/v1/models`, `/v1/models/{id}`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.gateway import sse, translate
from ollamamax_stack.services.gateway.keys import IMAGES, INFERENCE
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


def _has_text(answer: dict[str, Any]) -> bool:
    return bool((answer.get("message") or translate.EMPTY).get("content")
                or answer.get("response") or answer.get("done"))


async def _held_until_text(answers: AsyncIterator[dict[str, Any]],
                           check: Callable[[dict[str, Any]], object]) -> list[dict[str, Any]]:
    """The objects up to the first that carries text, which `check` must pass (logprobs:
    a node without them is a 400 before the stream begins, never a stream of silent nulls)."""
    held = []
    async for answer in answers:
        held.append(answer)
        if _has_text(answer):
            check(answer)
            break
    return held


async def _chain(held: list[dict[str, Any]],
                 rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in held:
        yield item
    async for item in rest:
        yield item


async def _completion_stream(request: web.Request, upstream: dict[str, Any],
                             usage: bool) -> web.StreamResponse:
    """A text completion streamed as text_completion events (with logprobs if asked)."""
    maker = translate.ChunkMaker(upstream["model"], chat=False)
    logprobs = "logprobs" in upstream
    offset = 0
    async with request.app[INFERENCE].stream("/api/generate", upstream) as answers:
        iterator = aiter(answers)
        held = await _held_until_text(iterator, translate.completion_logprobs) if (
            logprobs) else []
        # Headers go out only now: errors before the first byte stay real HTTP errors.
        response = await sse.open_events(request)
        final: dict[str, Any] = {}
        try:
            async for answer in _chain(held, iterator) if held else iterator:
                text = answer.get("response", "")
                if text:
                    probs = translate.completion_logprobs(answer, offset) if logprobs else None
                    offset += len(text)
                    await sse.send(response, maker.piece(text, logprobs=probs))
                if answer.get("done"):
                    final = answer
                    break
        except UpstreamError as exc:
            await sse.send(response, {"error": {"message": exc.message,
                                                "type": "server_error", "code": exc.code}})
            return response
        await sse.send(response, maker.piece("", translate.finish_reason(final)))
        if usage:
            await sse.send(response, maker.usage(final))
        await sse.send(response, sse.DONE)
    return response


async def _chat_stream(request: web.Request, plan: translate.ChatPlan,
                       usage: bool) -> web.StreamResponse:
    """A chat streamed as chunks: content, thinking, tool calls and logprobs as they come."""
    upstream = plan.upstream
    maker = translate.ChunkMaker(upstream["model"])
    forced = plan.forced
    special = forced is not None or plan.logprobs  # content that is not sent as it comes
    async with request.app[INFERENCE].stream("/api/chat", upstream) as answers:
        iterator = aiter(answers)
        held = await _held_until_text(
            iterator, lambda a: translate.logprobs_of(a, plan)) if plan.logprobs else []
        response = await sse.open_events(request)
        final: dict[str, Any] = {}
        called = False
        forced_text: list[str] = []
        try:
            # Straight from the node unless objects were held back (a second generator
            # layer per object costs a measurable share of a stream's CPU).
            async for answer in _chain(held, iterator) if held else iterator:
                message = answer.get("message") or translate.EMPTY
                text = message.get("content", "")
                if len(message) > 2:  # thinking or tool calls beside role and content
                    thinking = message.get("thinking")
                    if thinking:
                        await sse.send(response, maker.delta({"reasoning_content": thinking,
                                                              "reasoning": thinking}))
                    if message.get("tool_calls"):
                        called = True
                        await sse.send(response, maker.tool_calls(message["tool_calls"],
                                                                  plan.single_call))
                if special:
                    if forced is not None:
                        forced_text.append(text)
                    elif text:
                        await sse.send(response, maker.delta(
                            {"content": text}, translate.logprobs_of(answer, plan)))
                elif text or not maker.sent_role:
                    await sse.send(response, maker.piece(text))
                if answer.get("done"):
                    final = answer
                    break
            if forced is not None:
                called = True
                await sse.send(response, maker.tool_calls(forced.calls("".join(forced_text)),
                                                          plan.single_call))
        except ApiError as exc:
            await sse.send(response, {"error": {"message": exc.message,
                                                "type": "server_error", "code": exc.code}})
            return response
        await sse.send(response, maker.piece(
            "", "tool_calls" if called else translate.finish_reason(final)))
        if usage:
            await sse.send(response, maker.usage(final))
        await sse.send(response, sse.DONE)
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`, whole or streamed."""
    body = await json_body(request)
    plan = translate.chat_plan(body)
    upstream = plan.upstream
    if plan.fetches:
        await request.app[IMAGES].fetch_all(plan.fetches)
    if upstream["stream"]:
        return await _chat_stream(request, plan, translate.include_usage(body))
    answer = await request.app[INFERENCE].call("/api/chat", upstream)
    return json_answer(translate.chat_completion(upstream["model"], answer, plan))


async def completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/completions`, whole or streamed."""
    body = await json_body(request)
    upstream = translate.completion_request(body)
    model = upstream["model"]
    if upstream["stream"]:
        return await _completion_stream(request, upstream, translate.include_usage(body))
    answer = await request.app[INFERENCE].call("/api/generate", upstream)
    return json_answer(translate.text_completion(model, answer, "logprobs" in upstream))


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


