"""OpenAI requests to Ollama requests, and Ollama answers back to OpenAI's shapes."""

from __future__ import annotations

import base64
import os
import struct
import time
from typing import Any

from ollamamax_stack.services.common.errors import ApiError

ROLES = ("system", "user", "assistant", "tool", "developer")


def bad(message: str, param: str) -> ApiError:
    """A 400 in OpenAI's terms, naming the offending parameter."""
    return ApiError(400, message, "invalid_request_error", param=param)


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"'{name}' must be a number", name)
    return value


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad(f"'{name}' must be a non-negative integer", name)
    return value


def model_of(body: dict[str, Any]) -> str:
    """The requested model, which every endpoint needs."""
    model = body.get("model")
    if model is None:
        raise bad("you must provide a model parameter", "model")
    if not isinstance(model, str) or not model.strip():
        raise bad("'model' must be a non-empty string", "model")
    return model


def stream_of(body: dict[str, Any]) -> bool:
    """Whether to answer with server-sent events."""
    value = body.get("stream", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad("'stream' must be a boolean", "stream")
    return value


def include_usage(body: dict[str, Any]) -> bool:
    """`stream_options.include_usage`."""
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    return bool(options.get("include_usage"))


def options_of(body: dict[str, Any]) -> dict[str, Any]:
    """Sampling parameters as Ollama `options`."""
    n = _integer(body, "n")
    if n is not None and n != 1:
        raise bad("only n=1 is supported", "n")
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        value = _number(body, name)
        if value is not None:
            options[name] = value
    seed = _integer(body, "seed")
    if seed is not None:
        options["seed"] = seed
    limit = _integer(body, "max_completion_tokens")
    limit = _integer(body, "max_tokens") if limit is None else limit
    if limit is not None:
        options["num_predict"] = limit
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise bad("'stop' must be a string or an array of strings", "stop")
        options["stop"] = stop
    return options


def _content(value: Any, index: int) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):  # content parts: keep the text ones
        texts = [p.get("text", "") for p in value if isinstance(p, dict)
                 and p.get("type") == "text" and isinstance(p.get("text"), str)]
        if len(texts) == len(value):
            return "".join(texts)
    raise bad(f"messages[{index}].content must be a string or an array of text parts",
              f"messages[{index}].content")


def messages_of(body: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation as Ollama messages."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty array", "messages")
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"messages[{index}] must be an object", f"messages[{index}]")
        role = message.get("role")
        if role not in ROLES:
            raise bad(f"messages[{index}].role must be one of {', '.join(ROLES)}",
                      f"messages[{index}].role")
        out.append({"role": "system" if role == "developer" else role,
                    "content": _content(message.get("content"), index)})
    return out


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/chat/completions` body -> `/api/chat` body."""
    return {"model": model_of(body), "messages": messages_of(body),
            "stream": stream_of(body), "options": options_of(body)}


def completion_request(body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/completions` body -> `/api/generate` body."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("'prompt' must be a string (or an array of one string)", "prompt")
    request: dict[str, Any] = {"model": model_of(body), "prompt": prompt,
                               "stream": stream_of(body), "options": options_of(body)}
    if isinstance(body.get("suffix"), str):
        request["suffix"] = body["suffix"]
    return request


def embed_request(body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/embeddings` body -> `/api/embed` body."""
    value = body.get("input")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise bad("'input' must be a string or a non-empty array of strings", "input")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    return {"model": model_of(body), "input": value}


def finish_reason(answer: dict[str, Any]) -> str:
    """Ollama's done_reason as OpenAI's finish_reason."""
    return "length" if answer.get("done_reason") == "length" else "stop"


def usage(answer: dict[str, Any]) -> dict[str, int]:
    """Token counts from Ollama's final object."""
    prompt = int(answer.get("prompt_eval_count") or 0)
    completion = int(answer.get("eval_count") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def new_id(prefix: str) -> str:
    """`chatcmpl-…`, `cmpl-…` (24 random hex digits; urandom is a fifth of uuid4's cost)."""
    return f"{prefix}-{os.urandom(12).hex()}"


def chat_completion(model: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A whole `/api/chat` answer as a chat.completion."""
    message = answer.get("message") or {}
    return {"id": new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": message.get("content", "")},
                         "finish_reason": finish_reason(answer), "logprobs": None}],
            "usage": usage(answer)}


def text_completion(model: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A whole `/api/generate` answer as a text_completion."""
    return {"id": new_id("cmpl"), "object": "text_completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": answer.get("response", ""),
                         "finish_reason": finish_reason(answer), "logprobs": None}],
            "usage": usage(answer)}


def embeddings(model: str, answer: dict[str, Any], encoding: str) -> dict[str, Any]:
    """An `/api/embed` answer as OpenAI's embedding list (floats or base64 float32)."""
    data = []
    for index, vector in enumerate(answer.get("embeddings") or []):
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = int(answer.get("prompt_eval_count") or 0)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class ChunkMaker:
    """Builds the chat.completion.chunk (or text_completion) events of one stream."""

    def __init__(self, model: str, chat: bool = True) -> None:
        self.id = new_id("chatcmpl" if chat else "cmpl")
        self.model = model
        self.chat = chat
        self.created = int(time.time())
        self.sent_role = False

    def _event(self, choice: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk" if self.chat
                else "text_completion", "created": self.created, "model": self.model,
                "choices": [choice]}

    def piece(self, text: str, finish: str | None = None) -> dict[str, Any]:
        """A chunk carrying `text` (the first one also carries the role)."""
        if not self.chat:
            return self._event({"index": 0, "text": text, "finish_reason": finish,
                                "logprobs": None})
        delta: dict[str, str] = {}
        if not self.sent_role:
            delta["role"] = "assistant"
            self.sent_role = True
        if text or finish is None:
            delta["content"] = text
        return self._event({"index": 0, "delta": delta, "finish_reason": finish,
                            "logprobs": None})

    def usage(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The final chunk of `include_usage`: no choices, only usage."""
        event = self._event({})
        event["choices"] = []
        event["usage"] = usage(answer)
        return event
