"""OpenAI's Responses API (stateless) over Ollama's `/api/chat`: requests in, response objects
and their streamed events out.

Stateless like Ollama's own `/v1/responses`: nothing is stored, so `previous_response_id` is
refused and a conversation travels whole in `input` (messages, `function_call` and
`function_call_output` items).
"""

from __future__ import annotations

import os
import time
from typing import Any

from ollamamax_stack.services.gateway import content, tools, translate
from ollamamax_stack.services.gateway.errors import bad

MESSAGE_ROLES = ("user", "assistant", "system", "developer")


def item_id(prefix: str) -> str:
    """`msg_…`, `fc_…`, `rs_…`, `resp_…`."""
    return f"{prefix}_{os.urandom(12).hex()}"


def _text(value: Any, where: str, fetches: list[content.ImageFetch]) -> tuple[str, list[str]]:
    if isinstance(value, str):
        return value, []
    if isinstance(value, list):
        return content.parts(value, where, fetches)
    raise bad(f"{where} must be a string or an array of parts", where)


def _messages(body: dict[str, Any], fetches: list[content.ImageFetch]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        out.append({"role": "system", "content": body["instructions"]})
    given = body["input"]
    if isinstance(given, str):
        return [*out, {"role": "user", "content": given}]
    names: dict[str, str] = {}
    for index, item in enumerate(given):
        where = f"input[{index}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in MESSAGE_ROLES:
                raise bad(f"{where}.role must be one of {', '.join(MESSAGE_ROLES)}",
                          f"{where}.role")
            text, images = _text(item.get("content"), f"{where}.content", fetches)
            message: dict[str, Any] = {"role": "system" if role == "developer" else role,
                                       "content": text}
            if images:
                message["images"] = images
            out.append(message)
        elif kind == "function_call":
            call = {"id": item.get("call_id"),
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")}}
            if not isinstance(call["function"]["name"], str) or not isinstance(
                    call["function"]["arguments"], str):
                raise bad(f"{where} needs 'name' and 'arguments' (JSON text)", where)
            made = tools.calls_to_node([call], f"{where}")[0]
            names[str(call["id"])] = call["function"]["name"]
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(made)
            else:
                out.append({"role": "assistant", "content": "", "tool_calls": [made]})
        elif kind == "function_call_output":
            text, _ = _text(item.get("output", ""), f"{where}.output", fetches)
            answer: dict[str, Any] = {"role": "tool", "content": text,
                                      "tool_call_id": item.get("call_id")}
            if item.get("call_id") in names:
                answer["tool_name"] = names[item["call_id"]]
            out.append(answer)
        elif kind != "reasoning":  # the model's earlier reasoning: nothing to send back
            raise bad(f"{where}.type {kind!r} is not supported: message, function_call, "
                      "function_call_output", f"{where}.type")
    if not out:
        raise bad("'input' must not be empty", "input")
    return out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    given = body.get("tools")
    if not given:
        return None
    out = []
    for index, tool in enumerate(given):
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise bad(f"tools[{index}]: only function tools (with a name) can be served by "
                      f"Ollama, not {tool.get('type')!r}", f"tools[{index}].type")
        function = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
        out.append({"type": "function", "function": function})
    return out


def _format(body: dict[str, Any]) -> Any:
    fmt = (body.get("text") or translate.EMPTY).get("format")
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return "json"
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"]
    raise bad("'text.format' must be text, json_object or json_schema with a schema",
              "text.format")


def plan_of(body: dict[str, Any]) -> translate.ChatPlan:
    """A `/v1/responses` body as an `/api/chat` request and how to read its answer."""
    if body.get("previous_response_id") is not None:
        raise bad("'previous_response_id': this gateway is stateless (as Ollama's /v1); "
                  "send the whole conversation in 'input'", "previous_response_id")
    if body.get("background"):
        raise bad("'background' responses are not supported (nothing is stored)",
                  "background")
    fetches: list[content.ImageFetch] = []
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            options[name] = body[name]
    if body.get("max_output_tokens") is not None:
        options["num_predict"] = body["max_output_tokens"]
    upstream = {"model": translate.model_of(body), "messages": _messages(body, fetches),
                "stream": translate.stream_of(body), "options": options}
    plan = translate.ChatPlan(upstream, fetches=fetches)
    chat_like = {"tools": _tools(body), "tool_choice": body.get("tool_choice"),
                 "parallel_tool_calls": body.get("parallel_tool_calls"),
                 "reasoning": body.get("reasoning")}
    translate.extras(chat_like, upstream, plan)
    fmt = _format(body)
    if fmt is not None:
        if plan.forced is not None:
            raise bad("a forced 'tool_choice' cannot be combined with 'text.format'",
                      "tool_choice")
        upstream["format"] = fmt
    return plan


def skeleton(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The fields of a response object that do not depend on the answer."""
    return {"id": item_id("resp"), "object": "response", "created_at": int(time.time()),
            "status": "in_progress", "model": model, "output": [], "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"),
            "metadata": body.get("metadata") or {}, "temperature": body.get("temperature"),
            "top_p": body.get("top_p"), "max_output_tokens": body.get("max_output_tokens"),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "text": body.get("text") or {"format": {"type": "text"}},
            "reasoning": body.get("reasoning"), "store": False, "previous_response_id": None,
            "usage": None}


def usage(answer: dict[str, Any]) -> dict[str, Any]:
    """Ollama's counts as the Responses API's usage."""
    counted = translate.usage(answer)
    return {"input_tokens": counted["prompt_tokens"],
            "output_tokens": counted["completion_tokens"],
            "total_tokens": counted["total_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}


def finish(response: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """`response` completed (or incomplete at the token limit) with the final counts."""
    if answer.get("done_reason") == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        response["status"] = "completed"
    response["usage"] = usage(answer)
    return response


def reasoning_item(text: str, status: str = "completed") -> dict[str, Any]:
    """The model's thinking as a reasoning output item."""
    return {"type": "reasoning", "id": item_id("rs"), "status": status,
            "summary": [{"type": "summary_text", "text": text}] if text else []}


def message_item(text: str, status: str = "completed") -> dict[str, Any]:
    """Text as an assistant message output item."""
    return {"type": "message", "id": item_id("msg"), "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [],
                         "logprobs": []}] if status == "completed" else []}


def call_items(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI tool calls (from tools.calls_to_client) as function_call output items."""
    return [{"type": "function_call", "id": item_id("fc"), "call_id": call["id"],
             "name": call["function"]["name"], "arguments": call["function"]["arguments"],
             "status": "completed"} for call in calls]


def response_of(body: dict[str, Any], answer: dict[str, Any],
                plan: translate.ChatPlan) -> dict[str, Any]:
    """A whole `/api/chat` answer as a response object."""
    response = skeleton(body, plan.upstream["model"])
    message, _ = translate.assistant_message(answer.get("message") or translate.EMPTY, plan)
    output = response["output"]
    if message.get("reasoning_content"):
        output.append(reasoning_item(message["reasoning_content"]))
    if message.get("content"):
        output.append(message_item(message["content"]))
    output.extend(call_items(message.get("tool_calls") or []))
    return finish(response, answer)
