"""`POST /v1/responses`: whole, or streamed as the Responses API's typed events."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.gateway import responses, sse, tools, translate
from ollamamax_stack.services.gateway.keys import IMAGES, INFERENCE
from ollamamax_stack.services.gateway.openai_api import json_answer


class EventStream:
    """The events of one streamed response, numbered, with its output items kept."""

    def __init__(self, response: web.StreamResponse, skeleton: dict[str, Any]) -> None:
        self.response = response
        self.body = skeleton
        self.sequence = 0
        self.open: dict[str, Any] | None = None  # the reasoning or message item being written
        self.text: list[str] = []

    async def emit(self, kind: str, **fields: Any) -> None:
        """One event: `event: <type>` and its data."""
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        await self.response.write(b"event: " + kind.encode() + b"\ndata: " +
                                  orjson.dumps(data) + b"\n\n")

    @property
    def index(self) -> int:
        return len(self.body["output"]) - 1

    async def _start(self, item: dict[str, Any]) -> None:
        await self.close()
        self.body["output"].append(item)
        self.open = item
        self.text = []
        await self.emit("response.output_item.added", output_index=self.index,
                        item={**item, "content": []} if item["type"] == "message" else item)
        if item["type"] == "message":
            await self.emit("response.content_part.added", item_id=item["id"],
                            output_index=self.index, content_index=0,
                            part={"type": "output_text", "text": "", "annotations": []})
        else:
            await self.emit("response.reasoning_summary_part.added", item_id=item["id"],
                            output_index=self.index, summary_index=0,
                            part={"type": "summary_text", "text": ""})

    async def write(self, kind: str, piece: str) -> None:
        """A piece of text of the `kind` ("message" or "reasoning") item, opened if need be."""
        if self.open is None or self.open["type"] != kind:
            await self._start(responses.message_item("", "in_progress") if kind == "message"
                              else responses.reasoning_item("", "in_progress"))
        assert self.open is not None
        self.text.append(piece)
        if kind == "message":
            await self.emit("response.output_text.delta", item_id=self.open["id"],
                            output_index=self.index, content_index=0, delta=piece, logprobs=[])
        else:
            await self.emit("response.reasoning_summary_text.delta", item_id=self.open["id"],
                            output_index=self.index, summary_index=0, delta=piece)

    async def close(self) -> None:
        """Finish the item being written."""
        item, self.open = self.open, None
        if item is None:
            return
        text = "".join(self.text)
        index = self.body["output"].index(item)
        item["status"] = "completed"
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            item["content"] = [part]
            await self.emit("response.output_text.done", item_id=item["id"],
                            output_index=index, content_index=0, text=text, logprobs=[])
            await self.emit("response.content_part.done", item_id=item["id"],
                            output_index=index, content_index=0, part=part)
        else:
            part = {"type": "summary_text", "text": text}
            item["summary"] = [part]
            await self.emit("response.reasoning_summary_text.done", item_id=item["id"],
                            output_index=index, summary_index=0, text=text)
            await self.emit("response.reasoning_summary_part.done", item_id=item["id"],
                            output_index=index, summary_index=0, part=part)
        await self.emit("response.output_item.done", output_index=index, item=item)

    async def calls(self, calls: list[dict[str, Any]]) -> None:
        """Function calls, each its own item with its arguments in one delta."""
        await self.close()
        for item in responses.call_items(calls):
            self.body["output"].append(item)
            index = self.index
            await self.emit("response.output_item.added", output_index=index,
                            item={**item, "arguments": "", "status": "in_progress"})
            await self.emit("response.function_call_arguments.delta", item_id=item["id"],
                            output_index=index, delta=item["arguments"])
            await self.emit("response.function_call_arguments.done", item_id=item["id"],
                            output_index=index, arguments=item["arguments"])
            await self.emit("response.output_item.done", output_index=index, item=item)


async def _stream(request: web.Request, body: dict[str, Any],
                  plan: translate.ChatPlan) -> web.StreamResponse:
    skeleton = responses.skeleton(body, plan.upstream["model"])
    async with request.app[INFERENCE].stream("/api/chat", plan.upstream) as answers:
        response = await sse.open_events(request)
        events = EventStream(response, skeleton)
        await events.emit("response.created", response=skeleton)
        await events.emit("response.in_progress", response=skeleton)
        forced_text: list[str] = []
        final: dict[str, Any] = {}
        try:
            async for answer in answers:
                message = answer.get("message") or translate.EMPTY
                if message.get("thinking"):
                    await events.write("reasoning", message["thinking"])
                if message.get("tool_calls"):
                    await events.calls(tools.calls_to_client(message["tool_calls"],
                                                             plan.single_call))
                text = message.get("content", "")
                if text and plan.forced is not None:
                    forced_text.append(text)
                elif text:
                    await events.write("message", text)
                if answer.get("done"):
                    final = answer
                    break
            if plan.forced is not None:
                await events.calls(tools.calls_to_client(
                    plan.forced.calls("".join(forced_text)), plan.single_call))
            await events.close()
        except ApiError as exc:
            await events.emit("error", code=exc.code, message=exc.message, param=None)
            return response
        done = responses.finish(skeleton, final)
        kind = "response.completed" if done["status"] == "completed" else "response.incomplete"
        await events.emit(kind, response=done)
    return response


async def create_response(request: web.Request) -> web.StreamResponse:
    """`POST /v1/responses`."""
    body = await json_body(request)
    plan = responses.plan_of(body)
    if plan.fetches:
        await request.app[IMAGES].fetch_all(plan.fetches)
    if plan.upstream["stream"]:
        return await _stream(request, body, plan)
    answer = await request.app[INFERENCE].call("/api/chat", plan.upstream)
    return json_answer(responses.response_of(body, answer, plan))


def add_routes(app: web.Application) -> None:
    """Mount the Responses API."""
    app.router.add_post("/v1/responses", create_response)
