"""What the stand-in Ollama answers beyond plain text: tool calls, JSON and schema output,
thinking and logprobs, each deterministic so tests can predict it.

Conventions (documented in tests/fakes/ollama.py's docstring):
- tools: when the request carries `tools` and the last message is the user's, every tool whose
  name appears in that text is called, in the order of `tools`, with arguments made from its
  `parameters` schema (the user text fills string fields); after a `tool` message the model
  answers "The tool <name> said: <content>".
- format: "json" gives `{"reply": <text>}`; a schema gives an object valid against it.
- think: a truthy `think` gives `message.thinking` = "Thinking (<level>) about: <text>".
- logprobs: every token -0.25, its top alternatives -1, -2, ... (`top_logprobs` of them).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def resolve(schema: Any, root: dict[str, Any]) -> Any:
    """`schema` with a local `$ref` (`#/$defs/X`, `#/definitions/X`) followed."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
    return schema


def example(schema: Any, text: str, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value valid against `schema` (the JSON-schema subset models are given)."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    schema = resolve(schema, root)
    if not isinstance(schema, dict) or depth > 8:
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [resolve(s, root) for s in schema[key]]
            chosen = next((s for s in options if not (isinstance(s, dict)
                                                      and s.get("type") == "null")), options[0])
            return example(chosen, text, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: example(sub, text, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [example(schema.get("items", {}), text, root, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 0)), 1) if "minimum" in schema else 1
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def formatted(fmt: Any, text: str) -> str | None:
    """The content for `format`, or None without one."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return json.dumps({"reply": text})
    return json.dumps(example(fmt, text))


def tool_calls(tools: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls the model makes: tools named in the last user message."""
    if not isinstance(tools, list) or not messages or messages[-1].get("role") != "user":
        return []
    text = str(messages[-1].get("content", ""))
    calls = []
    for tool in tools:
        function = tool.get("function") or {} if isinstance(tool, dict) else {}
        name = function.get("name")
        if isinstance(name, str) and name and name in text:
            arguments = example(function.get("parameters") or {"type": "object"}, text)
            calls.append({"function": {"index": len(calls), "name": name,
                                       "arguments": arguments if isinstance(arguments, dict)
                                       else {}}})
    return calls


def tool_reply(messages: list[dict[str, Any]]) -> str | None:
    """After a tool's answer, the model reports it."""
    if not messages or messages[-1].get("role") != "tool":
        return None
    last = messages[-1]
    return f"The tool {last.get('tool_name') or 'unknown'} said: {last.get('content', '')}"


def thinking(think: Any, text: str) -> str | None:
    """The model's thinking when asked for it."""
    if think is None or think is False:
        return None
    level = think if isinstance(think, str) else "on"
    return f"Thinking ({level}) about: {text}"


def bad_image(messages: list[dict[str, Any]]) -> str | None:
    """Ollama's complaint about an image that is not base64, if any."""
    for message in messages:
        for image in message.get("images") or []:
            try:
                base64.b64decode(str(image), validate=True)
            except (binascii.Error, ValueError):
                return "illegal base64 data in images"
    return None


def logprobs(token: str, top: int) -> dict[str, Any]:
    """Ollama's logprob entry of one token."""
    entry: dict[str, Any] = {"token": token, "logprob": -0.25, "bytes": list(token.encode())}
    entry["top_logprobs"] = [{"token": token if i == 0 else f"{token.strip()}~{i}",
                              "logprob": -float(i) if i else -0.25}
                             for i in range(top)]
    return entry
