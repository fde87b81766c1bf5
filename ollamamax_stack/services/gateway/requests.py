"""OpenAI request bodies as pydantic models: what `/v1` checks before translating a request.

Unknown fields are allowed (and passed on as before); values the translator reads are
typed, and no number is NaN or infinite.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Number = float  # with allow_inf_nan=False below: JSON numbers only


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class FunctionCall(_Open):
    """A call the assistant made: the function's name and its arguments as JSON text."""

    name: StrictStr
    arguments: StrictStr


class ToolCall(_Open):
    """`messages[].tool_calls[]`."""

    id: StrictStr | None = None
    type: Literal["function"] | None = None
    function: FunctionCall


class ChatMessage(_Open):
    """One message of a chat: a role and text (or content parts), maybe tool calls."""

    role: StrictStr
    content: StrictStr | list[dict[str, Any]] | None = None
    name: StrictStr | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: StrictStr | None = None


class FunctionDef(_Open):
    """A function the model may call."""

    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class Tool(_Open):
    """`tools[]`: only functions exist in the chat API."""

    type: Literal["function"]
    function: FunctionDef


class NamedChoice(_Open):
    """`tool_choice: {"type": "function", "function": {"name"}}`."""

    type: Literal["function"]
    function: dict[str, StrictStr]


class JsonSchema(_Open):
    """`response_format.json_schema`."""

    name: StrictStr
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: StrictBool | None = None


class ResponseFormat(_Open):
    """`response_format`: text, JSON mode or a JSON schema (nothing else exists in Ollama)."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


class Reasoning(_Open):
    """`reasoning: {"effort"}` (OpenRouter's and the Responses API's spelling)."""

    effort: StrictStr | None = None


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
    tools: list[Tool] | None = None
    tool_choice: StrictStr | NamedChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: StrictStr | None = None
    reasoning: Reasoning | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)


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


class ResponsesText(_Open):
    """`text` of a Responses request: its `format`."""

    format: dict[str, Any] | None = None


class ResponsesRequest(_Open):
    """`POST /v1/responses` (stateless)."""

    model: StrictStr
    input: StrictStr | list[dict[str, Any]]
    instructions: StrictStr | None = None
    stream: StrictBool | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    max_output_tokens: StrictInt | None = Field(default=None, ge=0)
    tools: list[dict[str, Any]] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    text: ResponsesText | None = None
    reasoning: Reasoning | None = None
    previous_response_id: StrictStr | None = None
    store: StrictBool | None = None
    metadata: dict[str, Any] | None = None


MODELS: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest,
    "/v1/responses": ResponsesRequest,
}

