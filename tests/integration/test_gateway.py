"""The gateway with the real `openai` client: chat, streaming, completions, embeddings, errors."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import openai
import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from ollamamax_stack.services.common.runner import LINGER
from tests.integration.services_procs import (
    REGISTRY,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
SLOW_PROMPT = "a b c d e f g h i j k l m n o p"
# 200 tokens of slowpoke (20 ms each): a stream that outlasts the 1 s linger after the last
# answer plus aiohttp's 1 s shutdown timeout, so only the drain timeout keeps it alive.
LONG_PROMPT = " ".join(["w"] * 200)
DRAIN_TIMEOUT = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gateway")
    nodes = fake_nodes(tmp, [("a", "llama3.2,ghost", ["--token-delay", "0.002"]),
                             ("b", "llama3.2,nomic-embed-text", []),
                             ("slow", "slowpoke", ["--token-delay", "0.02"])])
    with running_stack(tmp, nodes, ["inference", "gateway"],
                       env={"OLLAMAMAX_MAX_BODY": "65536",
                            "OLLAMAMAX_DRAIN_TIMEOUT": str(DRAIN_TIMEOUT)}) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="unused",
                         max_retries=0)


HI = [{"role": "user", "content": "hi"}]


def test_models(stack: Stack) -> None:
    ids = [m.id for m in client(stack).models.list()]
    assert ids == ["ghost:latest", "llama3.2:latest", "nomic-embed-text:latest",
                   "slowpoke:latest"]
    assert client(stack).models.retrieve("llama3.2").id == "llama3.2:latest"


def test_chat_completion(stack: Stack) -> None:
    done = client(stack).chat.completions.create(model="llama3.2", messages=HI,  # type: ignore
                                                 max_tokens=3, temperature=0.1)
    assert done.choices[0].message.content == "Hello from llama3.2."
    assert done.choices[0].finish_reason == "length"
    assert done.usage is not None and done.usage.completion_tokens == 3


def test_chat_streaming_role_first_finish_last_usage_and_done(stack: Stack) -> None:
    chunks = list(client(stack).chat.completions.create(
        model="llama3.2", messages=HI, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from llama3.2. You said: hi"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7
    assert len(chunks) > 4  # chunk by chunk


def test_streaming_is_really_streamed(stack: Stack) -> None:
    slow = stack.nodes[2]  # type: ignore[attr-defined]
    stream = client(stack).chat.completions.create(
        model="slowpoke", stream=True,
        messages=[{"role": "user", "content": SLOW_PROMPT}])
    first_at = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_at = first_at or time.time()
    call = [c for c in slow.calls() if c["path"] == "/api/chat"][-1]
    # The first chunk reached us before the node had written its last token.
    assert first_at is not None and first_at < call["last_token"]


def test_completions_and_embeddings(stack: Stack) -> None:
    text = client(stack).completions.create(model="llama3.2", prompt="ok")
    assert text.choices[0].text == "Hello from llama3.2. You said: ok"
    streamed = "".join(c.choices[0].text for c in client(stack).completions.create(
        model="llama3.2", prompt="ok", stream=True) if c.choices)
    assert streamed == text.choices[0].text
    vectors = client(stack).embeddings.create(model="nomic-embed-text", input=["a", "b"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 8  # base64 decoded
    floats = client(stack).embeddings.create(model="nomic-embed-text", input="a",
                                             encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors.data[0].embedding, abs=1e-6)


def test_errors_have_openai_types(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client(stack).chat.completions.create(model="nope", messages=HI)  # type: ignore
    assert "nope" in missing.value.message
    with pytest.raises(openai.BadRequestError):
        client(stack).chat.completions.create(model="llama3.2", messages=[])
    with pytest.raises(openai.BadRequestError) as typed:
        client(stack).chat.completions.create(model="llama3.2", messages=HI,  # type: ignore
                                              temperature="hot")  # type: ignore[arg-type]
    assert "temperature" in typed.value.message
    with pytest.raises(openai.BadRequestError):
        client(stack).embeddings.create(model="nomic-embed-text", input=[])


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"{nope", 400, "not valid JSON"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model"),
    (b'{"model": "llama3.2", "messages": [{"role": "robot", "content": "x"}]}', 400, "role"),
    (b'{"model": "llama3.2", "messages": [], "n": 2}', 400, "messages"),
    (b'{"model": "llama3.2", "messages": "' + b"x" * 70_000 + b'"}', 413, "too large"),
])
def test_bad_input_on_chat(stack: Stack, body: bytes, status: int, needle: str) -> None:
    resp = httpx.post(stack.url("gateway") + "/v1/chat/completions", content=body)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"


def test_client_leaving_mid_stream_cancels_upstream(stack: Stack) -> None:
    slow = stack.nodes[2]  # type: ignore[attr-defined]
    with httpx.stream("POST", stack.url("gateway") + "/v1/chat/completions",
                      json={"model": "slowpoke", "stream": True,
                            "messages": [{"role": "user", "content": SLOW_PROMPT}]}) as resp:
        next(resp.iter_lines())
    wait_until(lambda: [c for c in slow.calls() if c["cancelled"]], what="node cancel")
    _, cluster = http("GET", stack.url("inference") + "/api/v1/cluster")
    wait_until(lambda: http("GET", stack.url("inference") + "/api/v1/cluster")[1]
               ["in_flight"] == 0, what="nothing in flight")
    assert client(stack).chat.completions.create(model="llama3.2", messages=HI)  # type: ignore


def test_no_healthy_node_is_503(stack: Stack) -> None:
    a = stack.nodes[0]  # type: ignore[attr-defined]
    a.fail("500")  # ghost lives only on a
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            client(stack).chat.completions.create(model="ghost", messages=HI)  # type: ignore
        assert caught.value.status_code == 503 and "ghost" in caught.value.message
    finally:
        a.fail("none")


def test_ready_and_health(stack: Stack) -> None:
    status, ready = http("GET", stack.url("gateway") + "/health/ready")
    assert status == 200 and ready["ready"] is True
    _, health = http("GET", stack.url("gateway") + "/health")
    assert health["service"] == "gateway" and health["auth"] == "off"
    assert health["store"] == "sqlite"  # revocations: in the run dir, shared by the stack


def test_cors_allows_the_registry_origins_only(stack: Stack) -> None:
    # The registry gives the gateway http://localhost:13100 and :3000 (shifted with the offset
    # where they are registry ports); a browser on another origin gets no CORS grant.
    from ollamamax_stack.registry import load_registry

    origins = load_registry(REGISTRY, offset=stack.offset).services["gateway"].cors
    url = stack.url("gateway") + "/v1/chat/completions"
    for origin in origins:
        answer = httpx.options(url, headers={"Origin": origin,
                                             "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "content-type"})
        assert answer.status_code == 200, (origin, answer.text)
        assert answer.headers["access-control-allow-origin"] == origin
    stranger = httpx.options(url, headers={"Origin": "http://evil.example",
                                           "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in stranger.headers
    simple = httpx.get(stack.url("gateway") + "/v1/models", headers={"Origin": origins[0]})
    assert simple.headers["access-control-allow-origin"] == origins[0]


def test_metrics_move_with_traffic(stack: Stack) -> None:
    def count() -> float:
        _, text = http("GET", stack.url("gateway") + "/metrics")
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "http_requests_total" and s.labels == {
                        "route": "/v1/chat/completions", "method": "POST", "status": "200"}:
                    return s.value
        return 0.0

    before = count()
    for _ in range(2):
        client(stack).chat.completions.create(model="llama3.2", messages=HI)  # type: ignore
    assert count() == before + 2


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(str(found[name]))


def test_openapi_validates_and_docs_render_offline(stack: Stack) -> None:
    _, document = http("GET", stack.url("gateway") + "/openapi.json")
    validate(document)
    assert {"/v1/chat/completions", "/v1/embeddings", "/auth/token", "/chat"} <= set(
        document["paths"])
    status, page = http("GET", stack.url("gateway") + "/docs")
    assert status == 200 and "SwaggerUIBundle" in page
    parser = _Assets()
    parser.feed(page)
    assert parser.urls and all(u.startswith("/") for u in parser.urls)  # nothing remote
    for url in parser.urls:
        resp = httpx.get(stack.url("gateway") + url)
        assert resp.status_code == 200 and len(resp.content) > 1000, url


def test_sigterm_drains_a_stream_longer_than_the_linger(stack: Stack) -> None:
    gateway = stack.procs["gateway"]
    pieces = []
    with httpx.stream("POST", stack.url("gateway") + "/v1/chat/completions",
                      json={"model": "slowpoke", "stream": True,
                            "messages": [{"role": "user", "content": LONG_PROMPT}]},
                      timeout=DRAIN_TIMEOUT) as resp:
        lines = resp.iter_lines()
        pieces.append(next(lines))
        gateway.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        pieces.extend(lines)
        drained = time.monotonic() - signalled
    events = [p for p in pieces if p]
    assert events[-1] == "data: [DONE]"  # the stream finished despite the SIGTERM
    assert len(events) > 200
    assert drained > LINGER + 1.0  # (a lower bound: 200 sleeps of 20 ms) past the linger
    assert gateway.popen.wait(DRAIN_TIMEOUT) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(stack.url("gateway") + "/health")
    stack.start("gateway")  # leave the module's stack whole
