"""OpenAI requests to Ollama requests, and Ollama answers back to OpenAI's shapes."""

from __future__ import annotations

import base64
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from ollamamax_stack.services.gateway import content, tools
from ollamamax_stack.services.gateway.errors import bad

ROLES = ("system", "user", "assistant", "tool", "developer")
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "none": False}
EMPTY: dict[str, Any] = {}


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
    value = body.get("stream", False)  # a default None: returns False all the same
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


@dataclass(slots=True)
class ChatPlan:
    """A chat request for the node, and what its answer needs on the way back."""

    upstream: dict[str, Any]
    forced: tools.Forced | None = None  # a tool call made through `format`
    single_call: bool = False  # parallel_tool_calls: false
    logprobs: bool = False
    fetches: list[content.ImageFetch] = field(default_factory=list)


def messages_of(body: dict[str, Any],
                fetches: list[content.ImageFetch] | None = None) -> list[dict[str, Any]]:
    """The conversation as Ollama messages (http image URLs left in `fetches`)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty array", "messages")
    pending = fetches if fetches is not None else []
    names: dict[str, str] = {}  # tool call id -> function name, for the tool's answer
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"messages[{index}] must be an object", f"messages[{index}]")
        role = message.get("role")
        if role not in ROLES:
            raise bad(f"messages[{index}].role must be one of {', '.join(ROLES)}",
                      f"messages[{index}].role")
        text = message.get("content")
        # The plain case, kept lean: _message gives the same dict (so skipping it is equivalent).
        if type(text) is str and len(message) == 2:
            out.append({"role": "system" if role == "developer" else role, "content": text})
        else:
            out.append(_message(message, role, text, index, pending, names))
    return out


def _message(message: dict[str, Any], role: str, text: Any, index: int,
             pending: list[content.ImageFetch], names: dict[str, str]) -> dict[str, Any]:
    """A message with content parts, tool calls or a tool's answer, as Ollama's."""
    item: dict[str, Any] = {"role": "system" if role == "developer" else role}
    if type(text) is str:
        item["content"] = text
    elif text is None:
        item["content"] = ""
    elif isinstance(text, list):
        item["content"], images = content.parts(text, f"messages[{index}].content", pending)
        if images:
            item["images"] = images
    else:
        raise bad(f"messages[{index}].content must be a string or an array of parts",
                  f"messages[{index}].content")
    _tool_fields(message, item, index, names)
    return item


def _tool_fields(message: dict[str, Any], item: dict[str, Any], index: int,
                 names: dict[str, str]) -> None:
    calls = message.get("tool_calls")
    if calls:
        item["tool_calls"] = tools.calls_to_node(calls, f"messages[{index}].tool_calls")
        for call in calls:
            if call.get("id"):
                names[call["id"]] = call["function"]["name"]
    answered = message.get("tool_call_id")
    if answered is not None and item["role"] == "tool":
        item["tool_call_id"] = answered
        if answered in names:
            item["tool_name"] = names[answered]


def format_of(body: dict[str, Any]) -> Any:
    """`response_format` as Ollama's `format`: "json", a schema, or None for text."""
    wanted = body.get("response_format")
    if wanted is None:
        return None
    kind = wanted.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (wanted.get("json_schema") or EMPTY).get("schema")
        if not isinstance(schema, dict):
            raise bad("'response_format.json_schema.schema' must be a JSON schema object",
                      "response_format")
        return schema
    if kind == "text":
        return None
    raise bad("'response_format.type' must be text, json_object or json_schema (what Ollama's "
              "format can express)", "response_format")


def think_of(body: dict[str, Any]) -> Any:
    """`reasoning_effort` (or `reasoning.effort`) as Ollama's `think`, None when unset."""
    effort = body.get("reasoning_effort")
    param = "reasoning_effort"
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort, param = body["reasoning"].get("effort"), "reasoning"
    if effort is None:
        return None
    if effort not in EFFORTS:
        raise bad(f"'{param}' must be one of {', '.join(EFFORTS)} (what Ollama's think "
                  "takes)", param)
    return EFFORTS[effort]


# Fields that would change the answer but that Ollama cannot honour: refused, never dropped.
REFUSED = {"logit_bias": "Ollama has no logit bias",
           "audio": "Ollama answers text only",
           "prediction": "Ollama has no predicted outputs",
           "web_search_options": "Ollama has no web search",
           "functions": "use 'tools' (the legacy function calling is not translated)",
           "function_call": "use 'tool_choice' (the legacy function calling is not translated)"}


def refuse_unservable(body: dict[str, Any]) -> None:
    """A 400 naming the first field of REFUSED in `body` (and modalities beyond text)."""
    for name, why in REFUSED.items():
        if body.get(name) is not None:
            raise bad(f"'{name}' is not supported: {why}", name)
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise bad("'modalities': Ollama answers text only", "modalities")


def extras(body: dict[str, Any], upstream: dict[str, Any], plan: ChatPlan) -> None:
    """Tools, format, think and logprobs of a chat, onto the node's request and the plan."""
    refuse_unservable(body)
    offered, forced = tools.tools_of(body)
    fmt = format_of(body)
    if forced is not None:
        if fmt is not None:
            raise bad("a forced 'tool_choice' cannot be combined with 'response_format': "
                      "Ollama forces a call through its format", "tool_choice")
        assert offered is not None
        fmt = forced.schema(offered)
        plan.forced = forced
    elif offered is not None:
        upstream["tools"] = [{"type": "function", "function": t["function"]} for t in offered]
    if fmt is not None:
        upstream["format"] = fmt
    think = think_of(body)
    if think is not None:
        upstream["think"] = think
    plan.single_call = body.get("parallel_tool_calls") is False
    if body.get("logprobs"):
        upstream["logprobs"] = plan.logprobs = True
        top = body.get("top_logprobs")
        if top:
            upstream["top_logprobs"] = top
    elif body.get("top_logprobs") is not None:
        raise bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")


# Fields past these send the request the long way (tools, formats, thinking, logprobs).
PLAIN = frozenset({"model", "messages", "stream", "stream_options", "temperature", "top_p",
                   "max_tokens", "max_completion_tokens", "stop", "seed", "n", "user",
                   "frequency_penalty", "presence_penalty"})


def chat_plan(body: dict[str, Any]) -> ChatPlan:
    """`/v1/chat/completions` body -> `/api/chat` body, and how to read its answer."""
    fetches: list[content.ImageFetch] = []
    upstream = {"model": model_of(body), "messages": messages_of(body, fetches),
                "stream": stream_of(body), "options": options_of(body)}
    plan = ChatPlan(upstream, fetches=fetches)
    if not PLAIN.issuperset(body):
        extras(body, upstream, plan)
    return plan


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/chat/completions` body -> `/api/chat` body."""
    return chat_plan(body).upstream


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
    for name in ("echo", "logit_bias"):
        if body.get(name) not in (None, False, 0):
            raise bad(f"'{name}' is not supported on /v1/completions", name)
    top = body.get("logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
            raise bad("'logprobs' must be an integer from 0 to 20", "logprobs")
        request["logprobs"] = True
        if top:
            request["top_logprobs"] = top
    if body.get("best_of") not in (None, 1):
        raise bad("only best_of=1 is supported", "best_of")
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
    request: dict[str, Any] = {"model": model_of(body), "input": value}
    if body.get("dimensions") is not None:
        request["dimensions"] = body["dimensions"]
    return request


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


LOGPROBS_MISSING = ("'logprobs': the node's Ollama does not return logprobs (it needs a "
                    "version that has them)")


def logprobs_of(answer: dict[str, Any], plan: ChatPlan | None) -> dict[str, Any] | None:
    """Ollama's logprobs as OpenAI's `{"content": [...]}`; a 400 if the node gave none."""
    if plan is None or not plan.logprobs:
        return None
    entries = answer.get("logprobs")
    if entries is None:
        raise bad(LOGPROBS_MISSING, "logprobs")
    return {"content": [{"token": e.get("token", ""), "logprob": e.get("logprob", 0.0),
                         "bytes": e.get("bytes"),
                         "top_logprobs": [{"token": t.get("token", ""),
                                           "logprob": t.get("logprob", 0.0),
                                           "bytes": t.get("bytes")}
                                          for t in e.get("top_logprobs") or ()]}
                        for e in entries]}


def assistant_message(message: dict[str, Any],
                      plan: ChatPlan | None) -> tuple[dict[str, Any], bool]:
    """Ollama's message as OpenAI's, and whether it calls tools."""
    text = message.get("content", "")
    out: dict[str, Any] = {"role": "assistant", "content": text}
    calls = message.get("tool_calls")
    if plan is not None and plan.forced is not None:
        calls, out["content"] = plan.forced.calls(text), None
    if calls:
        out["tool_calls"] = tools.calls_to_client(calls, plan is not None and plan.single_call)
    thinking = message.get("thinking")
    if thinking:
        out["reasoning_content"] = out["reasoning"] = thinking
    return out, bool(calls)


def chat_completion(model: str, answer: dict[str, Any],
                    plan: ChatPlan | None = None) -> dict[str, Any]:
    """A whole `/api/chat` answer as a chat.completion."""
    message, calls = assistant_message(answer.get("message") or EMPTY, plan)
    return {"id": new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if calls else finish_reason(answer),
                         "logprobs": logprobs_of(answer, plan)}],
            "usage": usage(answer)}


def completion_logprobs(answer: dict[str, Any], offset: int = 0) -> dict[str, Any]:
    """Ollama's logprobs in the completions API's shape (text offsets from `offset`); a 400
    if the node gave none."""
    entries = answer.get("logprobs")
    if entries is None:
        raise bad(LOGPROBS_MISSING, "logprobs")
    tokens, chosen, tops, offsets = [], [], [], []
    for entry in entries:
        token = entry.get("token", "")
        tokens.append(token)
        chosen.append(entry.get("logprob", 0.0))
        tops.append({t.get("token", ""): t.get("logprob", 0.0)
                     for t in entry.get("top_logprobs") or ()})
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": chosen, "top_logprobs": tops,
            "text_offset": offsets}


def text_completion(model: str, answer: dict[str, Any],
                    logprobs: bool = False) -> dict[str, Any]:
    """A whole `/api/generate` answer as a text_completion."""
    return {"id": new_id("cmpl"), "object": "text_completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": answer.get("response", ""),
                         "finish_reason": finish_reason(answer),
                         "logprobs": completion_logprobs(answer) if logprobs else None}],
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
        self.sent_role = False  # None would do: only its falsiness is read

    def _event(self, choice: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk" if self.chat
                else "text_completion", "created": self.created, "model": self.model,
                "choices": [choice]}

    def piece(self, text: str, finish: str | None = None,
              logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        """A chunk carrying `text` (the first one also carries the role)."""
        if not self.chat:
            return self._event({"index": 0, "text": text, "finish_reason": finish,
                                "logprobs": logprobs})
        delta: dict[str, str] = {}
        if not self.sent_role:
            delta["role"] = "assistant"
            self.sent_role = True
        if text or finish is None:
            delta["content"] = text
        return self._event({"index": 0, "delta": delta, "finish_reason": finish,
                            "logprobs": None})

    def delta(self, delta: dict[str, Any], logprobs: dict[str, Any] | None = None,
              finish: str | None = None) -> dict[str, Any]:
        """A chat chunk with any delta (thinking, tool calls, content with logprobs)."""
        if not self.sent_role:
            delta["role"] = "assistant"
            self.sent_role = True
        return self._event({"index": 0, "delta": delta, "finish_reason": finish,
                            "logprobs": logprobs})

    def tool_calls(self, calls: list[dict[str, Any]], single: bool) -> dict[str, Any]:
        """The chunk of a node's tool calls: whole, each with its index."""
        made = tools.calls_to_client(calls, single)
        for index, call in enumerate(made):
            call["index"] = index
        return self.delta({"tool_calls": made})

    def usage(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The final chunk of `include_usage`: no choices, only usage."""
        event = self._event({})  # its choices are replaced below: any argument would do
        event["choices"] = []
        event["usage"] = usage(answer)
        return event
