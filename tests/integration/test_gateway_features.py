"""What Ollama's own /v1 gives clients, through the gateway, with real clients: tools, structured
output, images, thinking, logprobs, embedding dimensions and the Responses API; what Ollama
cannot do is a 400 naming the field. The stand-in records what reached the node."""

from __future__ import annotations

import base64
import functools
import http.server as httpserver
import json
import operator
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.integration.services_procs import FakeNode, Stack, fake_nodes, http, running_stack

pytestmark = pytest.mark.timeout(120)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAh"
                       "Kmh3gAAAABJRU5ErkJggg==")


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    celsius: int
    sunny: bool


class Reply(BaseModel):
    reply: str


@tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"sunny in {city}"


class Images(httpserver.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def images() -> Iterator[int]:
    server = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("features")
    nodes = fake_nodes(tmp, [("a", "llama3.2,nomic-embed-text", []),
                             ("old", "oldie", ["--no-logprobs"])])
    with running_stack(tmp, nodes, ["inference", "gateway"],
                       env={"OLLAMAMAX_IMAGE_ALLOW_HOSTS": "localhost"}) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def node(stack: Stack, index: int = 0) -> FakeNode:
    return stack.nodes[index]  # type: ignore[attr-defined, no-any-return]


def last_body(stack: Stack, path: str = "/api/chat", index: int = 0) -> dict[str, Any]:
    status, got = http("GET", node(stack, index).url + "/_fake/bodies")
    assert status == 200
    return [b["body"] for b in got["bodies"] if b["path"] == path][-1]  # type: ignore[no-any-return]


def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="unused", max_retries=0)


def chat_model(stack: Stack) -> ChatOpenAI:
    return ChatOpenAI(model="llama3.2", base_url=stack.url("gateway") + "/v1",
                      api_key="unused", max_retries=0)  # type: ignore[arg-type]


def post(stack: Stack, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(stack.url("gateway") + path, json=body, timeout=30)


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


# --- tools -------------------------------------------------------------------------------
def test_tool_round_trip_with_the_openai_client(stack: Stack) -> None:
    ask = [{"role": "user", "content": "call get_weather for Paris"}]
    first = client(stack).chat.completions.create(model="llama3.2", messages=ask,  # type: ignore
                                                  tools=[WEATHER_TOOL])  # type: ignore[list-item]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id.startswith("call_") and call.function.name == "get_weather"  # type: ignore
    assert json.loads(call.function.arguments) == {"city": "call get_weather for Paris"}  # type: ignore
    assert last_body(stack)["tools"] == [WEATHER_TOOL]
    second = client(stack).chat.completions.create(model="llama3.2", tools=[WEATHER_TOOL],  # type: ignore
                                                   messages=[*ask, choice.message.model_dump(),  # type: ignore
                                                             {"role": "tool", "content": "sunny",
                                                              "tool_call_id": call.id}])
    assert second.choices[0].message.content == "The tool get_weather said: sunny"
    sent = last_body(stack)["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"index": 0, "name": "get_weather",
                                                    "arguments": {"city": ask[0]["content"]}}
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": call.id,
                       "tool_name": "get_weather"}


def test_langchain_bind_tools_round_trip(stack: Stack) -> None:
    model = chat_model(stack).bind_tools([get_weather])
    question = HumanMessage("What does get_weather say for Oslo?")
    asked = model.invoke([question])
    assert asked.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    answer = get_weather.invoke(asked.tool_calls[0])  # type: ignore[attr-defined]
    assert isinstance(answer, ToolMessage)
    final = model.invoke([question, asked, answer])
    assert final.content == f"The tool get_weather said: {answer.content}"


def test_langchain_bind_tools_streamed(stack: Stack) -> None:
    model = chat_model(stack).bind_tools([get_weather])
    question = HumanMessage("use get_weather on Rome")
    chunks = list(model.stream([question]))
    whole = functools.reduce(operator.add, chunks)
    assert isinstance(whole, AIMessageChunk)
    assert whole.tool_calls[0]["name"] == "get_weather"
    assert whole.tool_calls[0]["args"] == {"city": "use get_weather on Rome"}
    assert whole.response_metadata.get("finish_reason") == "tool_calls"
    answer = get_weather.invoke(whole.tool_calls[0])
    text = "".join(str(c.content) for c in model.stream([question, whole, answer]))
    assert text == f"The tool get_weather said: {answer.content}"


def test_streamed_tool_call_chunks(stack: Stack) -> None:
    chunks = list(client(stack).chat.completions.create(
        model="llama3.2", stream=True, tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "get_weather please"}]))
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    call = deltas[0].tool_calls[0]  # type: ignore[index]
    assert call.index == 0 and call.id and call.type == "function"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "get_weather please"}  # type: ignore
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


@pytest.mark.parametrize("choice", ["required",
                                    {"type": "function", "function": {"name": "get_weather"}}])
def test_forced_tool_choice_is_made_through_format(stack: Stack, choice: Any) -> None:
    streamed = list(client(stack).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "Lisbon"}], stream=True,
        tools=[WEATHER_TOOL], tool_choice=choice))  # type: ignore[list-item, arg-type]
    deltas = [c.choices[0].delta for c in streamed if c.choices]
    assert not "".join(d.content or "" for d in deltas)  # the JSON is the call, not text
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert json.loads(calls[0].function.arguments) == {"city": "Lisbon"}  # type: ignore
    # The user names no tool: the call is forced by the schema the node must answer in.
    done = client(stack).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "Lisbon"}],
        tools=[WEATHER_TOOL], tool_choice=choice)  # type: ignore[list-item, arg-type]
    call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Lisbon"}  # type: ignore[union-attr]
    assert done.choices[0].finish_reason == "tool_calls"
    assert isinstance(last_body(stack)["format"], dict)


def test_tool_choice_none_keeps_the_tools_from_the_node(stack: Stack) -> None:
    done = client(stack).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "get_weather"}],
        tools=[WEATHER_TOOL], tool_choice="none")  # type: ignore[list-item]
    assert done.choices[0].message.tool_calls is None
    assert "tools" not in last_body(stack)


# --- structured output -------------------------------------------------------------------
def test_langchain_structured_output_json_schema(stack: Stack) -> None:
    weather = chat_model(stack).with_structured_output(Weather, method="json_schema")
    got = weather.invoke("weather in Oslo as JSON")
    assert isinstance(got, Weather)
    assert last_body(stack)["format"]["properties"]["celsius"] == {"title": "Celsius",
                                                                  "type": "integer"}


def test_langchain_structured_output_function_calling(stack: Stack) -> None:
    # langchain names the function in tool_choice: the gateway forces it through format.
    weather = chat_model(stack).with_structured_output(Weather, method="function_calling")
    got = weather.invoke("weather in Bergen")
    assert isinstance(got, Weather) and got.city == "weather in Bergen"
    assert "tools" not in last_body(stack) and "celsius" in last_body(stack)["format"][
        "properties"]


def test_langchain_structured_output_json_mode(stack: Stack) -> None:
    reply = chat_model(stack).with_structured_output(Reply, method="json_mode")
    got = reply.invoke("answer in JSON")
    assert isinstance(got, Reply) and got.reply.endswith("answer in JSON")
    assert last_body(stack)["format"] == "json"


def test_openai_parse_with_a_pydantic_model(stack: Stack) -> None:
    done = client(stack).chat.completions.parse(
        model="llama3.2", response_format=Weather,
        messages=[{"role": "user", "content": "weather?"}])
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Weather) and parsed.city == "weather?"
    assert last_body(stack)["format"]["required"] == ["city", "celsius", "sunny"]


# --- images, thinking, logprobs, embeddings ----------------------------------------------
def test_image_parts_reach_the_node_as_images(stack: Stack, images: int) -> None:
    encoded = base64.b64encode(PNG).decode()
    done = client(stack).chat.completions.create(model="llama3.2", messages=[{
        "role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
            {"type": "image_url", "image_url": {"url": f"http://localhost:{images}/a.png"}}]}])
    assert done.choices[0].message.content.endswith("[images: 2]")  # type: ignore[union-attr]
    assert last_body(stack)["messages"][0] == {"role": "user", "content": "what is this?",
                                               "images": [encoded, encoded]}


def test_image_urls_of_private_addresses_are_refused(stack: Stack, images: int) -> None:
    # By address, by a name that resolves to this machine, the stack itself, other schemes.
    for url in (f"http://127.0.0.1:{images}/a.png", f"http://{socket.gethostname()}:{images}/",
                stack.url("gateway") + "/health", "http://10.1.2.3/x.png",
                "ftp://example.com/x.png"):
        resp = post(stack, "/v1/chat/completions", {"model": "llama3.2", "messages": [{
            "role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]})
        assert resp.status_code == 400, url
        assert resp.json()["error"]["param"] == "messages[0].content[0].image_url"


def test_reasoning_effort_becomes_think_and_comes_back(stack: Stack) -> None:
    done = post(stack, "/v1/chat/completions", {
        "model": "llama3.2", "reasoning_effort": "high",
        "messages": [{"role": "user", "content": "why"}]}).json()
    assert last_body(stack)["think"] == "high"
    assert done["choices"][0]["message"]["reasoning_content"] == "Thinking (high) about: why"
    chunks = list(client(stack).chat.completions.create(
        model="llama3.2", stream=True, messages=[{"role": "user", "content": "why"}],
        reasoning_effort="low"))
    thought = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                      for c in chunks if c.choices)
    assert thought == "Thinking (low) about: why"


def test_logprobs_come_back(stack: Stack) -> None:
    done = client(stack).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], logprobs=True,
        top_logprobs=2)
    content = done.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None
    assert "".join(t.token for t in content) == done.choices[0].message.content
    assert len(content[0].top_logprobs) == 2
    assert last_body(stack)["logprobs"] is True and last_body(stack)["top_logprobs"] == 2
    chunks = list(client(stack).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], logprobs=True,
        stream=True))
    tokens = [t.token for c in chunks if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.content or []]
    assert "".join(tokens) == "Hello from llama3.2. You said: hi"


def test_completions_logprobs(stack: Stack) -> None:
    done = client(stack).completions.create(model="llama3.2", prompt="ok", logprobs=2)
    probs = done.choices[0].logprobs
    assert probs is not None and "".join(probs.tokens or []) == done.choices[0].text
    assert len((probs.top_logprobs or [{}])[0]) == 2 and probs.text_offset[:2] == [0, 5]  # type: ignore
    assert last_body(stack, "/api/generate")["top_logprobs"] == 2
    streamed = list(client(stack).completions.create(model="llama3.2", prompt="ok",
                                                     logprobs=1, stream=True))
    offsets = [o for c in streamed if c.choices and c.choices[0].logprobs
               for o in c.choices[0].logprobs.text_offset or []]
    assert offsets == probs.text_offset


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_logprobs_from_a_node_without_them_is_a_400(stack: Stack, stream: bool,
                                                    path: str) -> None:
    asked = {"messages": HI, "logprobs": True} if "chat" in path else {"prompt": "p",
                                                                       "logprobs": 1}
    resp = post(stack, path, {"model": "oldie", "stream": stream, **asked})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "logprobs"


def test_embedding_dimensions(stack: Stack) -> None:
    got = client(stack).embeddings.create(model="nomic-embed-text", input="a", dimensions=2)
    assert len(got.data[0].embedding) == 2
    assert last_body(stack, "/api/embed")["dimensions"] == 2


# --- the Responses API, models -----------------------------------------------------------
def test_responses_plain(stack: Stack) -> None:
    done = client(stack).responses.create(model="llama3.2", input="hi", instructions="be kind")
    assert done.output_text == "Hello from llama3.2. You said: hi"
    assert done.status == "completed" and done.usage is not None
    assert last_body(stack)["messages"] == [{"role": "system", "content": "be kind"},
                                            {"role": "user", "content": "hi"}]


def test_responses_parse_with_a_pydantic_model(stack: Stack) -> None:
    done = client(stack).responses.parse(model="llama3.2", input="Oslo", text_format=Weather)
    assert isinstance(done.output_parsed, Weather) and done.output_parsed.city == "Oslo"
    assert last_body(stack)["format"]["required"] == ["city", "celsius", "sunny"]


def test_responses_streamed(stack: Stack) -> None:
    events = list(client(stack).responses.create(model="llama3.2", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from llama3.2. You said: hi"
    assert events[-1].response.output_text == text  # type: ignore[union-attr]
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_function_tools_round_trip(stack: Stack) -> None:
    tools = [{"type": "function", "name": "get_weather", "description": "weather",
              "parameters": WEATHER_TOOL["function"]["parameters"]}]  # type: ignore[index]
    first = client(stack).responses.create(model="llama3.2", input="get_weather Oslo",
                                           tools=tools)  # type: ignore[arg-type]
    call = [o for o in first.output if o.type == "function_call"][0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {  # type: ignore
        "city": "get_weather Oslo"}
    streamed = list(client(stack).responses.create(model="llama3.2", input="get_weather Oslo",
                                                   tools=tools, stream=True))  # type: ignore
    assert "response.function_call_arguments.done" in [e.type for e in streamed]
    second = client(stack).responses.create(model="llama3.2", tools=tools, input=[  # type: ignore
        {"role": "user", "content": "get_weather Oslo"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,  # type: ignore
         "arguments": call.arguments},  # type: ignore[union-attr]
        {"type": "function_call_output", "call_id": call.call_id, "output": "cold"}])  # type: ignore
    assert second.output_text == "The tool get_weather said: cold"


def test_responses_reasoning_and_forced_calls(stack: Stack) -> None:
    done = client(stack).responses.create(model="llama3.2", input="why",
                                          reasoning={"effort": "low"})
    assert [o.type for o in done.output] == ["reasoning", "message"]
    assert done.output[0].summary[0].text == "Thinking (low) about: why"  # type: ignore
    events = list(client(stack).responses.create(model="llama3.2", input="why", stream=True,
                                                 reasoning={"effort": "low"}))
    thought = "".join(e.delta for e in events
                      if e.type == "response.reasoning_summary_text.delta")
    assert thought == "Thinking (low) about: why"
    assert [o.type for o in events[-1].response.output] == ["reasoning", "message"]  # type: ignore
    tools = [{"type": "function", "name": "get_weather",
              "parameters": WEATHER_TOOL["function"]["parameters"]}]  # type: ignore[index]
    forced = list(client(stack).responses.create(model="llama3.2", input="Lima", stream=True,
                                                 tools=tools, tool_choice="required"))  # type: ignore
    calls = [o for o in forced[-1].response.output if o.type == "function_call"]  # type: ignore
    assert json.loads(calls[0].arguments) == {"city": "Lima"}


def test_model_not_found_hides_node_urls(stack: Stack) -> None:
    resp = post(stack, "/v1/chat/completions", {"model": "nope",
                                                "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 404
    message = resp.json()["error"]["message"]
    assert "nope" in message and "127.0.0.1" not in message and "http://" not in message
    assert client(stack).models.retrieve("llama3.2").id == "llama3.2:latest"


# --- refusals ----------------------------------------------------------------------------
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", {"response_format": {"type": "xml"}}, "response_format"),
    ("/v1/chat/completions", {"response_format": {"type": "json_schema"}}, "response_format"),
    ("/v1/chat/completions", {"tool_choice": "required"}, "tool_choice"),
    ("/v1/chat/completions", {"tools": [WEATHER_TOOL], "tool_choice": "always"}, "tool_choice"),
    ("/v1/chat/completions", {"tools": [WEATHER_TOOL], "tool_choice": {
        "type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ("/v1/chat/completions", {"tools": [WEATHER_TOOL], "tool_choice": "required",
                              "response_format": {"type": "json_object"}}, "tool_choice"),
    ("/v1/chat/completions", {"tools": [{"type": "retrieval"}]}, "tools"),
    ("/v1/chat/completions", {"reasoning_effort": "extreme"}, "reasoning_effort"),
    ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
     "messages[0].content[0].type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}]}]},
     "messages[0].content[0].image_url"),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ("/v1/responses", {"input": "hi", "previous_response_id": "resp_1"},
     "previous_response_id"),
    ("/v1/responses", {"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ("/v1/responses", {"input": "hi", "text": {"format": {"type": "xml"}}}, "text.format"),
    ("/v1/responses", {"input": [{"type": "computer_call"}]}, "input[0].type"),
])
def test_what_ollama_cannot_do_is_a_400_naming_the_field(stack: Stack, path: str,
                                                        body: dict[str, Any],
                                                        param: str) -> None:
    full = {"model": "llama3.2", **({"messages": HI} if path.endswith("completions") else {}),
            **body}
    resp = post(stack, path, full)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


# --- the /chat protocol ------------------------------------------------------------------
def ws_chat(stack: Stack, chat: dict[str, Any]) -> list[dict[str, Any]]:
    import asyncio

    import websockets

    async def run() -> list[dict[str, Any]]:
        async with websockets.connect(stack.ws("gateway")) as ws:
            assert json.loads(await ws.recv())["type"] == "nodes"
            await ws.send(json.dumps({"type": "chat", "id": 1, "model": "llama3.2", **chat}))
            got = []
            while not got or got[-1]["type"] not in ("done", "error"):
                got.append(json.loads(await ws.recv()))
            return got

    return asyncio.run(run())


def test_chat_protocol_takes_tools_format_and_think(stack: Stack) -> None:
    asked = ws_chat(stack, {"messages": [{"role": "user", "content": "get_weather Oslo"}],
                            "tools": [WEATHER_TOOL]})[-1]
    assert asked["finish_reason"] == "tool_calls"
    assert asked["tool_calls"][0]["function"]["arguments"] == {"city": "get_weather Oslo"}
    answered = ws_chat(stack, {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "get_weather Oslo"},
        {"role": "assistant", "content": "", "tool_calls": asked["tool_calls"]},
        {"role": "tool", "content": "cold", "tool_name": "get_weather"}]})[-1]
    assert answered["content"] == "The tool get_weather said: cold"
    shaped = ws_chat(stack, {"messages": HI, "format": Weather.model_json_schema()})[-1]
    assert Weather.model_validate_json(shaped["content"])
    assert last_body(stack)["format"] == Weather.model_json_schema()
    thought = ws_chat(stack, {"messages": HI, "think": True})
    assert thought[-1]["thinking"] == "Thinking (on) about: hi"
    assert "".join(m.get("thinking", "") for m in thought[:-1]) == "Thinking (on) about: hi"
    refused = ws_chat(stack, {"messages": HI, "format": "xml"})[-1]
    assert refused["type"] == "error" and "format" in refused["message"]


# --- the README's table ------------------------------------------------------------------
README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADING = "### The OpenAI API: what the gateway does with each field"
ENDPOINTS = {"chat": ("/v1/chat/completions", "/api/chat"),
             "completions": ("/v1/completions", "/api/generate"),
             "embeddings": ("/v1/embeddings", "/api/embed"),
             "responses": ("/v1/responses", "/api/chat")}
TOOL_ANSWER = [{"role": "user", "content": "get_weather"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
               {"role": "tool", "content": "cold", "tool_call_id": "call_1"}]
IMAGE = base64.b64encode(PNG).decode()
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
RESPONSES_TOOL = {"type": "function", "name": "get_weather",
                  "parameters": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
# (endpoint, field as the README writes it) -> (request fields, value expected at the node)
SAMPLES: dict[tuple[str, str], tuple[dict[str, Any], Any]] = {
    ("chat", "`model`"): ({}, "llama3.2"),
    ("chat", "`messages` (text, `developer` as `system`)"): (
        {"messages": [{"role": "developer", "content": "d"}, *HI]},
        [{"role": "system", "content": "d"}, *HI]),
    ("chat", "`messages[].content` `image_url` parts (data URL, or http(s) URL fetched by the "
             "gateway)"): ({"messages": [{"role": "user", "content": [{
                 "type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}}]}]},
                 [IMAGE]),
    ("chat", "`messages[].tool_calls` (arguments as JSON text)"): (
        {"messages": TOOL_ANSWER},
        [{"id": "call_1", "function": {"index": 0, "name": "get_weather",
                                       "arguments": {"city": "Oslo"}}}]),
    ("chat", "`messages[].tool_call_id` of a `tool` message"): ({"messages": TOOL_ANSWER},
                                                               "call_1"),
    ("chat", "the function's name for a `tool` message (from the call it answers)"): (
        {"messages": TOOL_ANSWER}, "get_weather"),
    ("chat", "`stream`"): ({"stream": True}, True),
    ("chat", "`temperature`"): ({"temperature": 0.5}, 0.5),
    ("chat", "`top_p`"): ({"top_p": 0.5}, 0.5),
    ("chat", "`seed`"): ({"seed": 3}, 3),
    ("chat", "`stop`"): ({"stop": "x"}, ["x"]),
    ("chat", "`frequency_penalty`"): ({"frequency_penalty": 0.5}, 0.5),
    ("chat", "`presence_penalty`"): ({"presence_penalty": 0.5}, 0.5),
    ("chat", "`max_tokens`"): ({"max_tokens": 4}, 4),
    ("chat", "`max_completion_tokens`"): ({"max_completion_tokens": 4}, 4),
    ("chat", "`tools`"): ({"tools": [WEATHER_TOOL]}, [WEATHER_TOOL]),
    ("chat", "`tool_choice` `auto`"): ({"tools": [WEATHER_TOOL], "tool_choice": "auto"},
                                       [WEATHER_TOOL]),
    ("chat", "`tool_choice` `required` or a named function"): (
        {"tools": [WEATHER_TOOL], "tool_choice": "required"},
        WEATHER_TOOL["function"]["parameters"]),  # type: ignore[index]
    ("chat", "`response_format` `json_object`"): (
        {"response_format": {"type": "json_object"}}, "json"),
    ("chat", "`response_format` `json_schema` (Ollama always holds the output to the schema, "
             "so `strict` is honoured either way)"): (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "s",
                                                                    "schema": SCHEMA}}}, SCHEMA),
    ("chat", "`reasoning_effort` (`low`/`medium`/`high`; `none` is `false`)"): (
        {"reasoning_effort": "medium"}, "medium"),
    ("chat", "`reasoning.effort`"): ({"reasoning": {"effort": "none"}}, False),
    ("chat", "`logprobs` (a 400 if the node's Ollama has none)"): ({"logprobs": True}, True),
    ("chat", "`top_logprobs`"): ({"logprobs": True, "top_logprobs": 3}, 3),
    ("completions", "`prompt`, `stream`, sampling fields as in chat"): ({"prompt": "p"}, "p"),
    ("completions", "`suffix`"): ({"prompt": "p", "suffix": "s"}, "s"),
    ("completions", "`logprobs` (a number: how many alternatives; a 400 if the node's Ollama "
                    "has none)"): ({"prompt": "p", "logprobs": 2}, True),
    ("embeddings", "`input`"): ({"input": ["a"]}, ["a"]),
    ("embeddings", "`dimensions`"): ({"input": "a", "dimensions": 3}, 3),
    ("responses", "`input` (text, messages, `input_image` parts, `function_call` and "
                  "`function_call_output` items)"): (
        {"input": [{"role": "user", "content": [
            {"type": "input_text", "text": "t"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{IMAGE}"}]}]},
        [{"role": "user", "content": "t", "images": [IMAGE]}]),
    ("responses", "`instructions`"): ({"input": "i", "instructions": "be"},
                                      [{"role": "system", "content": "be"},
                                       {"role": "user", "content": "i"}]),
    ("responses", "`tools` (function tools)"): (
        {"input": "i", "tools": [RESPONSES_TOOL]},
        [{"type": "function", "function": {"name": "get_weather", "parameters": RESPONSES_TOOL[
            "parameters"]}}]),
    ("responses", "`tool_choice`"): (
        {"input": "i", "tools": [RESPONSES_TOOL],
         "tool_choice": {"type": "function", "name": "get_weather"}},
        RESPONSES_TOOL["parameters"]),
    ("responses", "`text.format` (`json_object`, `json_schema`)"): (
        {"input": "i", "text": {"format": {"type": "json_schema", "name": "s",
                                           "schema": SCHEMA}}}, SCHEMA),
    ("responses", "`reasoning.effort`"): ({"input": "i", "reasoning": {"effort": "high"}},
                                          "high"),
    ("responses", "`max_output_tokens`"): ({"input": "i", "max_output_tokens": 5}, 5),
    ("responses", "`temperature`"): ({"input": "i", "temperature": 0.25}, 0.25),
    ("responses", "`top_p`"): ({"input": "i", "top_p": 0.25}, 0.25),
}


def translated_rows() -> list[tuple[str, str, str]]:
    """(endpoint, field, node path) of every row of the README's table marked translated."""
    text = README.read_text()
    assert TABLE_HEADING in text, f"README.md lost the heading {TABLE_HEADING!r}"
    rows = []
    for line in text.split(TABLE_HEADING, 1)[1].splitlines():
        if line.startswith("### "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[2].startswith("translated") and cells[3] != "—":
            rows.append((cells[0], cells[1], cells[3].split("`")[1]))
    return rows


def at(body: Any, path: str) -> list[Any]:
    """The values at `path` (`options.num_predict`, `messages[].images`) in a node's body."""
    values = [body]
    for part in path.split("."):
        many = part.endswith("[]")
        name = part.removesuffix("[]")
        values = [v[name] for v in values if isinstance(v, dict) and name in v]
        if many:
            values = [item for v in values for item in v]
    return values


def test_translated_fields_of_the_readme_reach_the_node(stack: Stack) -> None:
    rows = translated_rows()
    assert len(rows) > 30
    for endpoint, field_name, path in rows:
        assert (endpoint, field_name) in SAMPLES, f"README row {endpoint} {field_name}: no sample"
        fields, expected = SAMPLES[(endpoint, field_name)]
        model = "nomic-embed-text" if endpoint == "embeddings" else "llama3.2"
        request = {"model": model, **({"messages": HI} if endpoint == "chat" else {}), **fields}
        if endpoint == "responses" and "input" not in request:
            request["input"] = "hi"
        client_path, node_path = ENDPOINTS[endpoint]
        resp = post(stack, client_path, request)
        assert resp.status_code == 200, (endpoint, field_name, resp.text)
        seen = at(last_body(stack, node_path), path)
        assert expected in seen, (endpoint, field_name, path, seen)


# --- the llm CLI -------------------------------------------------------------------------
def llm_cli(stack: Stack, tmp: Path, *args: str) -> str:
    import shutil
    import subprocess
    import sys

    program = shutil.which("llm", path=str(Path(sys.executable).parent))
    assert program is not None, "the llm CLI is part of the test extra"
    (tmp / "extra-openai-models.yaml").write_text(
        f"- model_id: stack\n  model_name: llama3.2\n  api_base: {stack.url('gateway')}/v1\n"
        "  supports_schema: true\n  supports_tools: true\n")
    done = subprocess.run([program, "-m", "stack", "--no-stream", "--no-log", *args],
                          capture_output=True, text=True, timeout=60,
                          env={"LLM_USER_PATH": str(tmp), "OPENAI_API_KEY": "unused",
                               "PATH": "/usr/bin:/bin", "HOME": str(tmp)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_llm_cli_schema_and_tools(stack: Stack, tmp_path: Path) -> None:
    shaped = json.loads(llm_cli(stack, tmp_path, "--schema", "city, celsius int", "Oslo"))
    assert shaped == {"city": "Oslo", "celsius": 1}
    assert last_body(stack)["format"]["properties"]["celsius"] == {"type": "integer"}
    said = llm_cli(stack, tmp_path, "-T", "llm_version", "what does llm_version say?")
    assert said.startswith("The tool llm_version said: ")
    assert last_body(stack)["messages"][-1]["role"] == "tool"
