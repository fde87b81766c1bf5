"""Failover: refused, failing, dropping, hanging and killed nodes; nodes that come back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.integration.services_procs import (
    FakeNode,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
HI = [{"role": "user", "content": "one two three four five six seven eight"}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # The model loaded on both: warm nodes share the streams (a cold one would wait).
    warm = ["--token-delay", "0.02", "--warm", "llama3.2"]
    nodes = fake_nodes(tmp_path, [("a", "llama3.2", warm), ("b", "llama3.2", warm)])
    with running_stack(tmp_path, nodes, ["inference"]) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def health(stack: Stack, node: FakeNode) -> bool:
    _, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    return next(n["healthy"] for n in body["nodes"] if n["url"] == node.url)


def chat(stack: Stack) -> str:
    return str(ollama.Client(host=stack.url("inference")).chat(
        model="llama3.2", messages=HI).message.content)


def test_a_node_answering_500_is_skipped(stack: Stack) -> None:
    a, b = stack.nodes  # type: ignore[attr-defined]
    a.fail("500")
    answers = [chat(stack) for _ in range(4)]
    assert all(text.startswith("Hello from llama3.2") for text in answers)
    assert len([c for c in b.calls() if c["path"] == "/api/chat"]) == 4
    _, cluster = http("GET", stack.url("inference") + "/api/v1/cluster")
    assert cluster["failovers"] >= 1


def test_killing_a_node_mid_traffic_fails_only_started_streams(stack: Stack) -> None:
    a, b = stack.nodes  # type: ignore[attr-defined]
    started = threading.Barrier(7)
    results: list[str] = []

    def stream() -> None:
        text = ""
        try:
            for i, part in enumerate(ollama.Client(host=stack.url("inference")).chat(
                    model="llama3.2", messages=HI, stream=True)):
                if i == 0:
                    started.wait(10)
                text += part.message.content
            results.append("ok")
        except (ollama.ResponseError, httpx.HTTPError):
            results.append("broken mid-stream")

    threads = [threading.Thread(target=stream) for _ in range(6)]
    for thread in threads:
        thread.start()
    started.wait(10)  # every stream has its first token: bytes have flowed
    a.kill()
    # New requests after the kill: none may fail (a refuses, b answers).
    assert all(chat(stack).startswith("Hello") for _ in range(6))
    for thread in threads:
        thread.join(20)
    assert len(results) == 6 and results.count("ok") >= 3  # b's streams all finish
    wait_until(lambda: not health(stack, a), what="a marked down")
    # a comes back on the same port and is used again.
    a.start()
    wait_until(lambda: health(stack, a), what="a marked up again")
    before = len(a.calls())
    for _ in range(6):
        chat(stack)
    assert len(a.calls()) > before


def test_a_drop_mid_stream_is_an_error_line_and_service_goes_on(stack: Stack) -> None:
    a, b = stack.nodes  # type: ignore[attr-defined]
    a.fail("drop", after=2)
    b.fail("drop", after=2)
    with pytest.raises(ollama.ResponseError) as caught:
        for _ in ollama.Client(host=stack.url("inference")).chat(
                model="llama3.2", messages=HI, stream=True):
            pass
    assert "failed mid-stream" in caught.value.error
    a.fail("none")
    b.fail("none")
    assert chat(stack).startswith("Hello")


def test_a_hanging_node_is_marked_down_and_avoided(stack: Stack) -> None:
    a, b = stack.nodes  # type: ignore[attr-defined]
    a.fail("hang")
    wait_until(lambda: not health(stack, a), what="hanging a marked down")
    _, ready = http("GET", stack.url("inference") + "/health/ready")
    assert ready["ready"] and ready["degraded"]
    assert any("no answer within" in r for r in ready["reasons"])
    assert all(chat(stack).startswith("Hello") for _ in range(3))


def test_all_nodes_down_is_503_naming_model_and_nodes(stack: Stack) -> None:
    a, b = stack.nodes  # type: ignore[attr-defined]
    a.kill()
    b.kill()
    wait_until(lambda: not health(stack, a) and not health(stack, b), what="both down")
    with pytest.raises(ollama.ResponseError) as caught:
        chat(stack)
    assert caught.value.status_code == 503
    ids = {n["url"]: n["id"] for n in http("GET", stack.url("inference") + "/api/v1/nodes")[1]
           ["nodes"]}
    # Nodes are named by id; their addresses are for the log and key holders only.
    assert "llama3.2" in caught.value.error and ids[a.url] in caught.value.error
    assert f":{a.port}" not in caught.value.error and f", {a.port}" not in caught.value.error
    status, ready = http("GET", stack.url("inference") + "/health/ready")
    assert status == 200 and ready["ready"] and ready["degraded"]


def test_client_leaving_mid_stream_cancels_the_node(stack: Stack) -> None:
    a, b = stack.nodes  # type: ignore[attr-defined]
    with httpx.stream("POST", stack.url("inference") + "/api/chat",
                      json={"model": "llama3.2", "messages": HI}, timeout=10) as resp:
        next(resp.iter_lines())  # one token, then hang up
    cancelled = wait_until(lambda: [c for c in a.calls() + b.calls() if c["cancelled"]],
                           what="the node to see the cancel")
    assert cancelled[0]["finished"] is None
    assert chat(stack).startswith("Hello")
    _, cluster = http("GET", stack.url("inference") + "/api/v1/cluster")
    assert cluster["in_flight"] == 0  # nothing leaked
