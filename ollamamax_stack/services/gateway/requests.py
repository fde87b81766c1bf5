"""OpenAI request bodies as pydantic models: what `/v1` checks before translating a request.

Unknown fields are allowed (and passed on as before); values the translator reads are
typed, and no number is NaN or infinite.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Number = float  # with allow_inf_nan=False below: JSON numbers only


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class ChatMessage(_Open):
    """One message of a chat: a role and text (or content parts)."""

    role: StrictStr
    content: StrictStr | list[dict[str, Any]] | None = None
    name: StrictStr | None = None


class _Sampling(_Open):
    model: StrictStr
    stream: StrictBool | None = None
    stream_options: dict[str, Any] | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    frequency_penalty: Number | None = None
    presence_penalty: Number | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=0)
    n: StrictInt | None = None
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    user: StrictStr | None = None


class ChatCompletionRequest(_Sampling):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage]
    max_completion_tokens: StrictInt | None = Field(default=None, ge=0)


class CompletionRequest(_Sampling):
    """`POST /v1/completions`."""

    prompt: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]] | None = None
    suffix: StrictStr | None = None


class EmbeddingRequest(_Open):
    """`POST /v1/embeddings`."""

    model: StrictStr
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    encoding_format: StrictStr | None = None
    dimensions: StrictInt | None = Field(default=None, gt=0)
    user: StrictStr | None = None


MODELS: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest,
}

