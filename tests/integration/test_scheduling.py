"""The scheduler on the stand-in (issue 19): a full queue answers 503 with Retry-After in each
API's own shape, a node answering 500 trips and gets no more requests, a warm node wins."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest
import websockets

from tests.integration.services_procs import (
    FakeNode,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)
HI = [{"role": "user", "content": "hi"}]
LONG = " ".join(f"w{i}" for i in range(400))  # ~400 tokens: holds its slot for ~20 s


def stats(node: FakeNode) -> dict[str, Any]:
    status, body = http("GET", node.url + "/_fake/stats")
    assert status == 200, body
    return dict(body)


def chats_received(node: FakeNode) -> int:
    _, body = http("GET", node.url + "/_fake/bodies")
    return sum(1 for b in body["bodies"] if b["path"] == "/api/chat")


def metric(url: str, name: str, **labels: str) -> float:
    _, text = http("GET", url + "/metrics")
    for line in str(text).splitlines():
        if line.startswith(name + ("{" if labels else " ")) and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} at {url}/metrics")


def chat(url: str, model: str = "llama3.2") -> str:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    answer = client.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
    return str(answer.choices[0].message.content)


class Holder:
    """A streaming chat through the gateway that holds a slot until it is closed."""

    def __init__(self, url: str) -> None:
        self.started = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()
        assert self.started.wait(30), "the holding stream did not start"

    def _run(self, url: str) -> None:
        body = {"model": "llama3.2", "stream": True,
                "messages": [{"role": "user", "content": LONG}]}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as resp:
            for _ in resp.iter_lines():
                self.started.set()
                if self.stop.is_set():
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FakeNode]]:
    """One node of one slot; each front end queues at most one request."""
    tmp = tmp_path_factory.mktemp("queue")
    node, = fake_nodes(tmp, [("a", "llama3.2", ["--token-delay", "0.05"])])
    env = {"OLLAMAMAX_MAX_QUEUE": "1", "OLLAMAMAX_QUEUE_TIMEOUT": "60",
           "OLLAMA_NODES": f"{node.url};slots=1", "OLLAMAMAX_ALLOW_NODE_REGISTRATION": "1"}
    with running_stack(tmp, [node], ["inference", "gateway", "hub"], env=env) as stack:
        for service in ("gateway", "hub"):
            wait_until(lambda s=service: metric(stack.url(s), "ollamamax_node_slots",
                                                node=node_id(node)) == 1,
                       timeout=30, what=f"the {service} to see one slot")
        yield stack, node


def node_id(node: FakeNode) -> str:
    from ollamamax_stack.services.routing.node import node_id as make_id

    return make_id(node.url)


def test_a_full_queue_answers_503_with_retry_after_in_each_apis_shape(
        busy: tuple[Stack, FakeNode]) -> None:
    stack, node = busy
    gateway, inference, hub = (stack.url(s) for s in ("gateway", "inference", "hub"))
    holder = Holder(gateway)  # the node's one slot, taken through the gateway
    waiting: list[threading.Thread] = []
    try:
        # The gateway: one request waits, the next finds the queue full.
        waiting.append(threading.Thread(target=chat, args=(gateway,), daemon=True))
        waiting[-1].start()
        wait_until(lambda: metric(gateway, "ollamamax_queue_depth") == 1, what="gateway queue")
        resp = httpx.post(gateway + "/v1/chat/completions", timeout=30,
                          json={"model": "llama3.2", "messages": HI})
        assert resp.status_code == 503, resp.text
        assert int(resp.headers["Retry-After"]) >= 1
        error = resp.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "server_busy"
        assert "OLLAMAMAX_MAX_QUEUE" in error["message"]
        with pytest.raises(openai.InternalServerError) as raised:
            chat(gateway)
        assert raised.value.status_code == 503

        # Inference (the Ollama API): the slot is held stack-wide, so it queues there too.
        client = ollama.Client(host=inference, timeout=60)
        waiting.append(threading.Thread(
            target=lambda: client.chat(model="llama3.2", messages=HI), daemon=True))
        waiting[-1].start()
        wait_until(lambda: metric(inference, "ollamamax_queue_depth") == 1,
                   what="inference queue")
        resp = httpx.post(inference + "/api/chat", timeout=30,
                          json={"model": "llama3.2", "messages": HI, "stream": False})
        assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1
        assert list(resp.json()) == ["error"] and "busy" in resp.json()["error"]
        with pytest.raises(ollama.ResponseError) as refused:
            client.chat(model="llama3.2", messages=HI)
        assert refused.value.status_code == 503

        # The hub's /chat: an `error` message with `retry_after`.
        async def over_websocket() -> dict[str, Any]:
            async with websockets.connect(hub.replace("http://", "ws://") + "/chat") as ws:
                await ws.recv()  # nodes
                for chat_id in (1, 2):
                    await ws.send(json.dumps({"type": "chat", "id": chat_id,
                                              "model": "llama3.2", "messages": HI}))
                while True:
                    message: dict[str, Any] = json.loads(await ws.recv())
                    if message["type"] == "error":
                        return message

        message = asyncio.run(over_websocket())
        assert message["code"] == "server_busy" and message["retry_after"] >= 1
        assert message["id"] in (1, 2)
    finally:
        holder.close()
        for thread in waiting:
            thread.join(60)
    assert stats(node)["most_held"] == 1  # the node never held more than its one slot
    assert metric(gateway, "ollamamax_queue_refused_total", reason="full") >= 2
    assert metric(gateway, "ollamamax_queue_wait_seconds_count") >= 1


def test_node_options_are_checked_where_they_are_given(busy: tuple[Stack, FakeNode]) -> None:
    stack, node = busy
    nodes = stack.url("inference") + "/api/v1/nodes"
    status, body = http("POST", nodes, {"url": "http://127.0.0.1:9", "slots": 0})
    assert status == 400 and "slots must be a whole number 1-256" in body["error"]
    status, body = http("POST", nodes, {"url": "http://127.0.0.1:9", "gpus": 2})
    assert status == 400 and "unknown node option 'gpus'" in body["error"]
    status, body = http("POST", nodes, {"url": "http://127.0.0.1:9", "slots": 3, "tier": 1})
    assert status == 201 and (body["slots"], body["tier"], body["weight"]) == (3, 1, 1.0)
    http("DELETE", f"{nodes}/{body['id']}")
    bad = subprocess.run(stack.argv("serve", "inference"), capture_output=True, text=True,
                         timeout=60, env={**os.environ, "OLLAMA_NODES": f"{node.url};slots=x"})
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"ollamamax: error: OLLAMA_NODES: {node.url}: slots must be a whole number 1-256, "
        "got 'x'"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[FakeNode]]]:
    """Two nodes of the same model; `warm` has it loaded, `cold` takes 0.5 s to load it."""
    tmp = tmp_path_factory.mktemp("pair")
    nodes = fake_nodes(tmp, [("cold", "llama3.2", ["--load-delay", "0.5"]),
                             ("warm", "llama3.2", ["--warm", "llama3.2"])])
    env = {"OLLAMAMAX_TRIP_AFTER": "3", "OLLAMAMAX_TRIP_COOLDOWN": "120"}
    with running_stack(tmp, nodes, ["inference", "gateway", "hub"], env=env) as stack:
        yield stack, nodes


def test_a_warm_node_is_preferred(pair: tuple[Stack, list[FakeNode]]) -> None:
    stack, (cold, warm) = pair
    gateway = stack.url("gateway")
    wait_until(lambda: [n["loaded"] for n in http("GET", stack.url("inference") +
                                                  "/api/v1/routes")[1]["nodes"]]
               == [[], ["llama3.2:latest"]], what="the table to carry /api/ps")
    before = chats_received(cold), chats_received(warm)
    for _ in range(6):
        assert chat(gateway) == "Hello from llama3.2. You said: hi"
    assert chats_received(cold) == before[0]  # never loaded a second copy
    assert chats_received(warm) == before[1] + 6
    assert stats(cold)["loads"] == {}


def test_a_node_answering_500_trips_and_gets_no_more_requests(
        pair: tuple[Stack, list[FakeNode]]) -> None:
    stack, (cold, warm) = pair
    gateway, hub = stack.url("gateway"), stack.url("hub")
    before = chats_received(warm)
    warm.fail("500")
    try:
        for _ in range(8):  # every one answered by the other node (failover before a byte)
            assert chat(gateway) == "Hello from llama3.2. You said: hi"
        tripped_at = chats_received(warm)
        assert 1 <= tripped_at - before <= 3  # OLLAMAMAX_TRIP_AFTER
        for _ in range(8):
            assert chat(gateway) == "Hello from llama3.2. You said: hi"
        assert chats_received(warm) == tripped_at
        # The inference service publishes it; the hub honours it within one table round.
        _, table = http("GET", stack.url("inference") + "/api/v1/routes")
        entry = next(n for n in table["nodes"] if n["url"] == warm.url)
        assert entry["open_for"] > 0
        wait_until(lambda: metric(hub, "ollamamax_node_tripped", node=entry["id"]) == 1,
                   what="the hub to see the trip")
        for _ in range(4):
            assert hub_chat(hub) == "Hello from llama3.2. You said: hi"
        assert chats_received(warm) == tripped_at
    finally:
        warm.fail("none")


def hub_chat(url: str) -> str:
    async def run() -> str:
        async with websockets.connect(url.replace("http://", "ws://") + "/chat") as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "chat", "id": 1, "model": "llama3.2",
                                      "messages": HI}))
            while True:
                message = json.loads(await ws.recv())
                if message["type"] in ("done", "error"):
                    assert message["type"] == "done", message
                    return str(message["content"])

    return asyncio.run(run())


def test_a_4xx_is_not_a_node_failure(pair: tuple[Stack, list[FakeNode]]) -> None:
    stack, (cold, warm) = pair
    inference = stack.url("inference")
    before = chats_received(cold)
    for _ in range(6):  # an image that is not base64: the node's 400, the request's fault
        resp = httpx.post(inference + "/api/chat", timeout=30, json={
            "model": "llama3.2", "stream": False,
            "messages": [{"role": "user", "content": "look", "images": ["not base64!"]}]})
        assert resp.status_code == 400 and "base64" in resp.json()["error"], resp.text
    assert chats_received(cold) == before + 6
    _, nodes = http("GET", inference + "/api/v1/nodes")
    assert next(n for n in nodes["nodes"] if n["url"] == cold.url)["breaker"] == "closed"
    answer = ollama.Client(host=inference).chat(model="llama3.2", messages=HI)
    assert answer.message.content == "Hello from llama3.2. You said: hi"
