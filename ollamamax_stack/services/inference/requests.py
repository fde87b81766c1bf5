"""Ollama request bodies as pydantic models: what the routed `/api` endpoints check.

Unknown fields are allowed (the body goes to the node exactly as sent); known ones are
typed, every chat message is an object with a role, and no number is NaN or infinite.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class Message(_Open):
    """One chat message."""

    role: StrictStr
    content: StrictStr | None = None
    images: list[StrictStr] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    thinking: StrictStr | None = None


class _Call(_Open):
    model: StrictStr
    stream: StrictBool | None = None
    options: dict[str, Any] | None = None
    keep_alive: StrictStr | StrictInt | StrictFloat | None = None
    format: StrictStr | dict[str, Any] | None = None


class ChatRequest(_Call):
    """`POST /api/chat`."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    think: StrictBool | StrictStr | None = None


class GenerateRequest(_Call):
    """`POST /api/generate`."""

    prompt: StrictStr | None = None
    suffix: StrictStr | None = None
    system: StrictStr | None = None
    template: StrictStr | None = None
    images: list[StrictStr] | None = None
    context: list[StrictInt] | None = None
    raw: StrictBool | None = None
    think: StrictBool | StrictStr | None = None


class EmbedRequest(_Call):
    """`POST /api/embed`."""

    input: StrictStr | list[StrictStr]
    truncate: StrictBool | None = None
    dimensions: StrictInt | None = None


class EmbeddingsRequest(_Call):
    """`POST /api/embeddings` (the older single-prompt form)."""

    prompt: StrictStr | None = None


class ShowRequest(_Call):
    """`POST /api/show`."""

    verbose: StrictBool | None = None


MODELS: dict[str, type[BaseModel]] = {
    "/api/chat": ChatRequest,
    "/api/generate": GenerateRequest,
    "/api/embed": EmbedRequest,
    "/api/embeddings": EmbeddingsRequest,
    "/api/show": ShowRequest,
}

