"""Log injection and small leaks: control characters, ?token= in logs, node URLs, Server."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import ollama
import openai
import pytest

from tests.integration.services_procs import (
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters but \t and \n
FORGED = "http://u\nINFO ollamamax.services: FORGED\u001bc:p@127.0.0.1:11434"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("leaks")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference", "gateway", "hub"],
                       env={"OLLAMAMAX_ACCESS_LOG": "1",
                            "OLLAMAMAX_ALLOW_NODE_REGISTRATION": "1"}) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def log_of(stack: Stack, service: str) -> str:
    return stack.procs[service].log.read_text(errors="replace")


@pytest.mark.parametrize("url", [FORGED, "http://a b:1", "http://h:1/\x00", "http:///x",
                                 "http://[::1", "javascript://x:1"])
def test_a_node_url_with_control_characters_or_no_host_is_refused(stack: Stack,
                                                                   url: str) -> None:
    status, body = http("POST", stack.url("inference") + "/api/v1/nodes", {"url": url})
    assert status == 400, body
    assert not CONTROL.search(body["error"]) and "\n" not in body["error"]
    _, nodes = http("GET", stack.url("inference") + "/api/v1/nodes")
    assert [n["url"] for n in nodes["nodes"]] == [stack.nodes[0].url]  # type: ignore[attr-defined]


def test_no_control_character_from_a_request_reaches_a_log_line(stack: Stack) -> None:
    http("POST", stack.url("inference") + "/api/v1/nodes", {"url": FORGED})
    http("GET", stack.url("inference") + "/api/tags%0AINFO%20ollamamax.services:%20FORGED%1Bc")
    http("GET", stack.url("gateway") + "/v1/models", headers={"User-Agent": "x\x1bc\x07"})
    for service in ("inference", "gateway"):
        text = log_of(stack, service)
        assert not CONTROL.search(text), service
        assert not any(line.startswith("INFO ollamamax.services: FORGED")
                       for line in text.splitlines()), service


def test_the_access_log_redacts_tokens(stack: Stack) -> None:
    http("GET", stack.url("hub") + "/chat?token=sk-very-secret-1&x=1")
    http("GET", stack.url("gateway") + "/v1/models?token=sk-very-secret-2")
    text = log_of(stack, "hub") + log_of(stack, "gateway")
    assert "/chat?token=" in text
    assert "sk-very-secret" not in text


def test_error_bodies_hide_node_urls_from_anonymous_callers(stack: Stack) -> None:
    fake = stack.nodes[0]  # type: ignore[attr-defined]
    fake.fail("500")
    try:
        status, body = http("POST", stack.url("inference") + "/api/chat",
                            {"model": "llama3.2", "messages": []})
        with pytest.raises(openai.APIStatusError) as caught:
            openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="x",
                          max_retries=0).chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    finally:
        fake.fail("none")
    assert status == 503, body
    hidden = f"127.0.0.1:{fake.port}"
    assert hidden not in body["error"] and "no node could serve" in body["error"]
    assert hidden not in str(caught.value.body)
    assert hidden in log_of(stack, "inference")  # the operator still sees it


@pytest.mark.parametrize("service", ["gateway", "inference", "hub", "web"])
def test_the_server_header_names_no_version(stack: Stack, service: str) -> None:
    with urllib.request.urlopen(stack.url(service) + "/health", timeout=10) as resp:
        server = resp.headers["Server"]
    assert server == "ollamamax"


def node_healthy(stack: Stack) -> bool:
    _, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    return all(n["healthy"] for n in body["nodes"])


def test_a_node_failing_mid_stream_is_not_named_to_anonymous_callers(stack: Stack) -> None:
    fake = stack.nodes[0]  # type: ignore[attr-defined]
    # An earlier test's injected 500s may have marked the node down: the stream must start.
    wait_until(lambda: node_healthy(stack), what="the node healthy again")
    fake.fail("drop", after=2)
    try:
        stream = openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="x",
                               max_retries=0).chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "a b c d e f"}],
            stream=True)
        with pytest.raises(openai.APIError) as caught:
            for _ in stream:
                pass
        # Each path must reach the node and see the drop, not find it marked down by the last.
        wait_until(lambda: node_healthy(stack), what="the node healthy again")
        hub_error = ws_error(stack.ws("hub"))
        wait_until(lambda: node_healthy(stack), what="the node healthy again")
        with pytest.raises(ollama.ResponseError) as direct:
            for _ in ollama.Client(host=stack.url("inference")).chat(
                    model="llama3.2", messages=[{"role": "user", "content": "a b c d"}],
                    stream=True):
                pass
    finally:
        fake.fail("none")
    hidden = f"127.0.0.1:{fake.port}"
    assert "mid-stream" in str(caught.value) and hidden not in str(caught.value)
    assert "mid-stream" in hub_error and hidden not in hub_error
    assert "mid-stream" in direct.value.error and hidden not in direct.value.error
    assert hidden in log_of(stack, "inference")


def ws_error(url: str) -> str:
    """The message of the error a chat over a WebSocket ends with."""
    import asyncio
    import json

    import websockets

    async def run() -> str:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "chat", "id": 1, "model": "llama3.2",
                                      "messages": [{"role": "user", "content": "a b c d"}]}))
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "error":
                    return str(message["message"])
                assert message["type"] != "done", message

    return asyncio.run(run())
