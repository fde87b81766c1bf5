"""The `/chat` protocol (DESIGN §7): parsing client messages, building server messages."""

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


def check_chat(message: dict[str, Any]) -> None:
    """A chat needs an id, a model and messages; stream and options have types."""
    chat_id = message.get("id")
    if not isinstance(chat_id, str | int) or isinstance(chat_id, bool) or chat_id == "":
        raise ProtocolError(BAD_FIELD, "chat needs an 'id' (string or number) to match replies")
    model = message.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ProtocolError(MISSING_MODEL, "chat needs a 'model' (string)", chat_id)
    messages = message.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages):
        raise ProtocolError(BAD_FIELD, "chat needs 'messages': a non-empty array of "
                                       "{role, content} strings", chat_id)
    if not isinstance(message.get("stream", True), bool):
        raise ProtocolError(BAD_FIELD, "'stream' must be a boolean", chat_id)
    if not isinstance(message.get("options", {}), dict):
        raise ProtocolError(BAD_FIELD, "'options' must be an object", chat_id)


def error(code: str, message: str, chat_id: Any = None) -> dict[str, Any]:
    """`{"type": "error", "id", "code", "message"}`."""
    return {"type": "error", "id": chat_id, "code": code, "message": message}


def chunk(chat_id: Any, content: str) -> dict[str, Any]:
    """One piece of a streamed answer."""
    return {"type": "chunk", "id": chat_id, "content": content}


def done(chat_id: Any, content: str, final: dict[str, Any], node: str | None) -> dict[str, Any]:
    """The end of an answer: the whole text, token usage, and the node that made it."""
    prompt = int(final.get("prompt_eval_count") or 0)
    completion = int(final.get("eval_count") or 0)
    return {"type": "done", "id": chat_id, "content": content,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
            "finish_reason": "length" if final.get("done_reason") == "length" else "stop",
            "node": node}


def nodes(snapshot: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"type": "nodes", "nodes": [...]}`."""
    return {"type": "nodes", "nodes": snapshot}
