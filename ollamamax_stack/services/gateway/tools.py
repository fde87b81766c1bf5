"""Function calling between OpenAI's shapes and Ollama's.

Ollama takes `tools` and answers `message.tool_calls` with arguments as objects; OpenAI clients
send and expect arguments as JSON text, each call with an id. Ollama cannot be told to call a
tool (`tool_choice`), so a forced call (`required`, or a named function) is made with
`format`: the node's output is constrained to the function's arguments schema (or to one of
the functions' `{name, arguments}` when several may be chosen), and the gateway turns that
JSON into the call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.gateway.errors import bad


def call_id() -> str:
    """`call_…`, as OpenAI's ids look."""
    return f"call_{os.urandom(12).hex()}"


@dataclass(frozen=True, slots=True)
class Forced:
    """A call the node is made to produce through `format`: which functions it may pick."""

    names: tuple[str, ...]

    def schema(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """The `format` that makes the node's answer such a call."""
        params = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"}
                  for t in tools}
        if len(self.names) == 1:
            return params[self.names[0]]
        return {"anyOf": [{"type": "object", "required": ["name", "arguments"],
                           "properties": {"name": {"const": name}, "arguments": params[name]}}
                          for name in self.names]}

    def calls(self, content: str) -> list[dict[str, Any]]:
        """The node's JSON text as Ollama tool calls (a 502 when it is no such call)."""
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise ApiError(502, "the node did not answer the forced tool call with JSON",
                           "upstream_error") from None
        if len(self.names) == 1:
            return [{"function": {"name": self.names[0], "arguments": value}}]
        if not isinstance(value, dict) or value.get("name") not in self.names:
            raise ApiError(502, "the node's forced tool call names no offered function",
                           "upstream_error")
        return [{"function": {"name": value["name"], "arguments": value.get("arguments", {})}}]


def tools_of(body: dict[str, Any], tools_key: str = "tools") -> tuple[list[dict[str, Any]] |
                                                                      None, Forced | None]:
    """The tools to send to the node, and the call to force (from `tool_choice`)."""
    tools = body.get(tools_key)
    choice = body.get("tool_choice")
    if not tools:
        if choice not in (None, "none", "auto"):
            raise bad("'tool_choice' needs 'tools'", "tool_choice")
        return None, None
    names = [t["function"]["name"] for t in tools]
    if choice is None or choice == "auto":
        return tools, None
    if choice == "none":
        return None, None  # a model that is not shown the tools cannot call them
    if choice == "required":
        return tools, Forced(tuple(names))
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", choice.get("name"))
        if name not in names:
            raise bad(f"'tool_choice' names function {name!r}, which is not in 'tools'",
                      "tool_choice")
        return tools, Forced((str(name),))
    raise bad("'tool_choice' must be 'none', 'auto', 'required' or a named function",
              "tool_choice")


def calls_to_node(calls: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """An assistant message's OpenAI tool calls as Ollama's (arguments parsed to objects)."""
    out = []
    for index, call in enumerate(calls):
        function = call["function"]
        try:
            arguments = orjson.loads(function["arguments"] or "{}")
        except orjson.JSONDecodeError:
            raise bad(f"{where}[{index}].function.arguments must be JSON text",
                      f"{where}[{index}].function.arguments") from None
        item: dict[str, Any] = {"function": {"index": index, "name": function["name"],
                                             "arguments": arguments}}
        if call.get("id"):
            item["id"] = call["id"]
        out.append(item)
    return out


def calls_to_client(calls: list[dict[str, Any]], single: bool) -> list[dict[str, Any]]:
    """Ollama's tool calls as OpenAI's: an id each, arguments as JSON text."""
    out = []
    for call in calls[:1] if single else calls:
        function = call.get("function") or {}
        arguments = function.get("arguments", {})
        out.append({"id": call.get("id") or call_id(), "type": "function",
                    "function": {"name": function.get("name", ""),
                                 "arguments": arguments if isinstance(arguments, str)
                                 else orjson.dumps(arguments).decode()}})
    return out
