"""The `/chat` protocol of the README: parsing client messages, building server messages."""

from __future__ import annotations

from typing import Any

from ollamamax_stack.services.common.errors import parse_json

# Error codes a client can act on.
BAD_JSON = "bad_json"
UNKNOWN_TYPE = "unknown_type"
MISSING_MODEL = "missing_model"
BAD_FIELD = "bad_field"
TOO_LARGE = "message_too_large"
UNAUTHORIZED = "unauthorized"
DUPLICATE_ID = "duplicate_id"
TOO_MANY = "too_many_chats"
RATE_LIMITED = "rate_limit_exceeded"
CLIENT_TYPES = ("chat", "nodes", "ping", "cancel")


class ProtocolError(Exception):
    """A client message the hub refuses: code, message, and the chat id if one was given."""

    def __init__(self, code: str, message: str, chat_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.chat_id = chat_id


def parse(text: str) -> dict[str, Any]:
    """A client message as a dict with a known `type`, or a ProtocolError."""
    try:
        message = parse_json(text.encode())
    except RecursionError:
        raise ProtocolError(BAD_JSON, "message is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError(BAD_JSON, f"message is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_JSON, "message must be a JSON object")
    kind = message.get("type")
    if kind not in CLIENT_TYPES:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {kind!r}: expected one of "
                                          f"{', '.join(CLIENT_TYPES)}", message.get("id"))
    if kind == "chat":
        check_chat(message)
    return message


THINK_LEVELS = (True, False, "low", "medium", "high")


def _is_message(m: Any) -> bool:
    """A chat message: a role, and text content (or tool calls instead of it)."""
    if not isinstance(m, dict) or not isinstance(m.get("role"), str):
        return False
    if "tool_calls" in m:
        return isinstance(m["tool_calls"], list) and isinstance(m.get("content", ""), str)
    return isinstance(m.get("content"), str)


def _is_tool(t: Any) -> bool:
    return (isinstance(t, dict) and t.get("type") == "function"
            and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str))


def check_extras(message: dict[str, Any], chat_id: Any) -> None:
    """`tools`, `format` and `think`, passed to Ollama's /api/chat as they are."""
    tools = message.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(map(_is_tool, tools))):
        raise ProtocolError(BAD_FIELD, "'tools' must be an array of {type: \"function\", "
                                       "function: {name, description?, parameters?}}", chat_id)
    fmt = message.get("format")
    if fmt is not None and fmt != "json" and not isinstance(fmt, dict):
        raise ProtocolError(BAD_FIELD, "'format' must be \"json\" or a JSON schema object",
                            chat_id)
    think = message.get("think")
    if think is not None and not any(think is v or (isinstance(v, str) and think == v)
                                     for v in THINK_LEVELS):
        raise ProtocolError(BAD_FIELD, "'think' must be true, false, \"low\", \"medium\" or "
                                       "\"high\"", chat_id)


def check_chat(message: dict[str, Any]) -> None:
    """A chat needs an id, a model and messages; stream, options, tools, format, think have
    types."""
    chat_id = message.get("id")
    if not isinstance(chat_id, str | int) or isinstance(chat_id, bool) or chat_id == "":
        raise ProtocolError(BAD_FIELD, "chat needs an 'id' (string or number) to match replies")
    model = message.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ProtocolError(MISSING_MODEL, "chat needs a 'model' (string)", chat_id)
    messages = message.get("messages")
    if not isinstance(messages, list) or not messages or not all(map(_is_message, messages)):
        raise ProtocolError(BAD_FIELD, "chat needs 'messages': a non-empty array of "
                                       "{role, content} strings (or {role, tool_calls})",
                            chat_id)
    if not isinstance(message.get("stream", True), bool):
        raise ProtocolError(BAD_FIELD, "'stream' must be a boolean", chat_id)
    if not isinstance(message.get("options", {}), dict):
        raise ProtocolError(BAD_FIELD, "'options' must be an object", chat_id)
    if "tools" in message or "format" in message or "think" in message:
        check_extras(message, chat_id)


def error(code: str, message: str, chat_id: Any = None,
          retry_after: int | None = None) -> dict[str, Any]:
    """`{"type": "error", "id", "code", "message"}`, with `retry_after` seconds when busy."""
    out = {"type": "error", "id": chat_id, "code": code, "message": message}
    if retry_after is not None:
        out["retry_after"] = retry_after
    return out


def chunk(chat_id: Any, content: str, thinking: str | None = None) -> dict[str, Any]:
    """One piece of a streamed answer (of its text, or of the model's thinking)."""
    out = {"type": "chunk", "id": chat_id, "content": content}
    if thinking:
        out["thinking"] = thinking
    return out


def done(chat_id: Any, content: str, final: dict[str, Any], node: str | None,
         tool_calls: list[dict[str, Any]] | None = None,
         thinking: str = "") -> dict[str, Any]:
    """The end of an answer: the whole text, token usage, the node that made it, and the
    tool calls and thinking when there are any."""
    prompt = int(final.get("prompt_eval_count") or 0)
    completion = int(final.get("eval_count") or 0)
    reason = "length" if final.get("done_reason") == "length" else "stop"
    out = {"type": "done", "id": chat_id, "content": content,
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion},
           "finish_reason": "tool_calls" if tool_calls else reason, "node": node}
    if tool_calls:
        out["tool_calls"] = tool_calls
    if thinking:
        out["thinking"] = thinking
    return out


def nodes(snapshot: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"type": "nodes", "nodes": [...]}`."""
    return {"type": "nodes", "nodes": snapshot}
