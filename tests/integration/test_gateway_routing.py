"""One hop: the gateway routes straight to the nodes with the inference service's table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.services_procs import (
    FakeNode,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
HI = [{"role": "user", "content": "hi"}]
REFRESH = 20.0  # the gateway's long-poll period: a change must arrive before one elapses


def chat(stack: Stack, model: str = "llama3.2") -> str:
    client = openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="unused",
                           max_retries=0)
    answer = client.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
    return str(answer.choices[0].message.content)


def answers(stack: Stack, model: str) -> bool:
    try:
        return chat(stack, model).startswith("Hello")
    except openai.APIError:
        return False


def node_metric(stack: Stack, name: str, node_id: str) -> float:
    _, text = http("GET", stack.url("gateway") + "/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("node") == node_id:
                return float(sample.value)
    raise AssertionError(f"no {name} for node {node_id} on the gateway")


def routed_by_inference(stack: Stack) -> int:
    _, cluster = http("GET", stack.url("inference") + "/api/v1/cluster")
    return int(cluster["requests"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("routing")
    nodes = fake_nodes(tmp, [("a", "llama3.2", []), ("spare", "mistral", [])])
    with running_stack(tmp, nodes[:1], ["inference", "gateway"],
                       env={"OLLAMAMAX_ROUTES_WAIT": str(REFRESH),
                            "OLLAMAMAX_ALLOW_NODE_REGISTRATION": "1"}) as running:
        nodes[1].start()
        running.nodes = nodes  # type: ignore[attr-defined]
        try:
            yield running
        finally:
            assert nodes[1].proc is not None
            nodes[1].proc.stop()  # started here, not by running_stack


def test_requests_go_to_the_node_without_the_inference_hop(stack: Stack) -> None:
    a: FakeNode = stack.nodes[0]  # type: ignore[attr-defined]
    before = len(a.calls())
    assert chat(stack) == "Hello from llama3.2. You said: hi"
    assert len(a.calls()) == before + 1
    assert routed_by_inference(stack) == 0  # the node answered the gateway itself
    # The gateway follows the table: the same generation once it has caught up (the answer just
    # loaded the model on the node, and /api/ps says so in the table's next generation).
    def caught_up() -> tuple[dict[str, Any], dict[str, Any]] | None:
        _, health = http("GET", stack.url("gateway") + "/health")
        _, table = http("GET", stack.url("inference") + "/api/v1/routes")
        same = health["routing"]["generation"] == table["generation"]
        return (health, table) if same else None

    health, table = wait_until(caught_up, 30, "the gateway's table to reach inference's")
    assert health["routing"]["fresh"] is True
    assert node_metric(stack, "ollamamax_node_requests_total", table["nodes"][0]["id"]) >= 1


def test_a_node_added_or_removed_reaches_the_gateway_within_one_refresh(stack: Stack) -> None:
    spare: FakeNode = stack.nodes[1]  # type: ignore[attr-defined]
    assert not answers(stack, "mistral")
    status, node = http("POST", stack.url("inference") + "/api/v1/nodes", {"url": spare.url})
    assert status == 201
    wait_until(lambda: answers(stack, "mistral"), timeout=REFRESH, what="the added node")
    assert [c for c in spare.calls() if c["path"] == "/api/chat"]
    http("DELETE", stack.url("inference") + f"/api/v1/nodes/{node['id']}")
    wait_until(lambda: not answers(stack, "mistral"), timeout=REFRESH, what="the removal")
    calls = len(spare.calls())
    with pytest.raises(openai.NotFoundError):
        chat(stack, "mistral")
    assert len(spare.calls()) == calls
    assert routed_by_inference(stack) == 0


def test_a_node_dropping_mid_stream_ends_the_stream_with_an_error_in_its_format(
        stack: Stack) -> None:
    a: FakeNode = stack.nodes[0]  # type: ignore[attr-defined]
    a.fail("drop", after=2)
    try:
        with httpx.stream("POST", stack.url("gateway") + "/v1/chat/completions",
                          json={"model": "llama3.2", "stream": True, "messages": HI}) as resp:
            assert resp.status_code == 200  # bytes flowed before the drop: no retry
            events = [line for line in resp.iter_lines() if line]
        error = json.loads(events[-1].removeprefix("data: "))["error"]
        assert "failed mid-stream" in error["message"] and error["type"] == "server_error"
        assert sum('"content"' in e for e in events) >= 2  # the tokens before the drop

        async def over_websocket() -> dict[str, Any]:
            async with websockets.connect(stack.ws("gateway")) as ws:
                await ws.recv()  # nodes
                await ws.send(json.dumps({"type": "chat", "id": 7, "model": "llama3.2",
                                          "messages": HI}))
                while True:
                    message: dict[str, Any] = json.loads(await ws.recv())
                    if message["type"] in ("error", "done"):
                        return message

        message = asyncio.run(over_websocket())
        assert message["type"] == "error" and message["id"] == 7
        assert "failed mid-stream" in message["message"]
    finally:
        a.fail("none")
    assert chat(stack) == "Hello from llama3.2. You said: hi"


def test_with_inference_down_the_gateway_routes_with_its_last_table(stack: Stack) -> None:
    stack.procs["inference"].stop()
    try:
        wait_until(lambda: not http("GET", stack.url("gateway") + "/health")[1]
                   ["routing"]["fresh"], what="the gateway to see inference gone")
        assert chat(stack) == "Hello from llama3.2. You said: hi"
        status, models = http("GET", stack.url("gateway") + "/v1/models")
        assert status == 200 and [m["id"] for m in models["data"]] == ["llama3.2:latest"]
        _, health = http("GET", stack.url("gateway") + "/health")
        assert "not answering" in health["routing"]["error"]
        status, ready = http("GET", stack.url("gateway") + "/health/ready")
        assert status == 200 and ready["ready"] and ready["degraded"]
        assert any("routing with the last table" in r for r in ready["reasons"])
    finally:
        stack.start("inference")
    wait_until(lambda: http("GET", stack.url("gateway") + "/health")[1]["routing"]["fresh"],
               timeout=REFRESH, what="the gateway to follow inference again")
    assert http("GET", stack.url("gateway") + "/health/ready")[1]["degraded"] is False


@pytest.fixture
def blind_stack(tmp_path: Path) -> Iterator[Stack]:
    """Inference checks the nodes once at start, then not for an hour."""
    nodes = fake_nodes(tmp_path, [("a", "llama3.2", []), ("b", "llama3.2", [])])
    with running_stack(tmp_path, nodes, ["inference", "gateway"],
                       env={"OLLAMAMAX_HEALTH_INTERVAL": "3600",
                            "OLLAMAMAX_SUSPECT_FOR": "600"}) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def test_a_dead_node_is_avoided_from_the_gateways_own_failed_connect(
        blind_stack: Stack) -> None:
    stack = blind_stack
    a, b = stack.nodes  # type: ignore[attr-defined]
    _, table = http("GET", stack.url("inference") + "/api/v1/routes")
    ids: dict[str, Any] = {n["url"]: n["id"] for n in table["nodes"]}
    a.kill()
    for _ in range(8):
        assert chat(stack) == "Hello from llama3.2. You said: hi"  # none fails
    # The inference service has not noticed: its table still calls a healthy.
    _, table = http("GET", stack.url("inference") + "/api/v1/routes")
    assert all(n["healthy"] for n in table["nodes"])
    # The gateway tried a once, saw the refused connect, and went to b from then on.
    assert node_metric(stack, "ollamamax_node_errors_total", ids[a.url]) == 1
    assert node_metric(stack, "ollamamax_node_up", ids[a.url]) == 0
    assert len([c for c in b.calls() if c["path"] == "/api/chat"]) == 8
    _, ready = http("GET", stack.url("gateway") + "/health/ready")
    assert ready["degraded"] and any(a.url in r and "connect" in r for r in ready["reasons"])
