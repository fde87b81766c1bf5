"""The /chat protocol with the real `websockets` client on gateway, hub and fallback."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.integration.services_procs import Stack, fake_nodes, http, running_stack

pytestmark = pytest.mark.timeout(120)
FRONT_ENDS = ["gateway", "hub", "fallback"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("hub")
    nodes = fake_nodes(tmp, [("a", "llama3.2", ["--token-delay", "0.002"]),
                             ("b", "phi3", ["--token-delay", "0.002"]),
                             ("spare", "mistral", [])])
    with running_stack(tmp, nodes[:2], ["inference", *FRONT_ENDS],
                       env={"OLLAMAMAX_WS_MAX_MESSAGE": "4096",
                            "OLLAMAMAX_ALLOW_NODE_REGISTRATION": "1"}) as running:
        nodes[2].start()
        running.nodes = nodes  # type: ignore[attr-defined]
        try:
            yield running
        finally:
            assert nodes[2].proc is not None
            nodes[2].proc.stop()


def chat(chat_id: Any, model: str, text: str = "hi") -> str:
    return json.dumps({"type": "chat", "id": chat_id, "model": model,
                       "messages": [{"role": "user", "content": text}]})


async def until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", FRONT_ENDS)
def test_concurrent_chats_on_one_socket(stack: Stack, service: str) -> None:
    async def run() -> None:
        async with websockets.connect(stack.ws(service)) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "nodes" and len(hello["nodes"]) == 2
            await ws.send(chat("x", "llama3.2"))
            await ws.send(chat(2, "phi3", "yo"))
            await ws.send(json.dumps({"type": "ping"}))
            chunks: dict[Any, str] = {"x": "", 2: ""}
            done: dict[Any, dict[str, Any]] = {}
            pong = False
            while len(done) < 2:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] == "chunk":
                    chunks[message["id"]] += message["content"]
                elif message["type"] == "done":
                    done[message["id"]] = message
                elif message["type"] == "pong":
                    pong = True
            assert pong
            assert done["x"]["content"] == chunks["x"] == "Hello from llama3.2. You said: hi"
            assert done[2]["content"] == chunks[2] == "Hello from phi3. You said: yo"
            assert done[2]["usage"]["completion_tokens"] == 6
            _, nodes = http("GET", stack.url("inference") + "/api/v1/nodes")
            by_url = {n["url"]: n["id"] for n in nodes["nodes"]}
            assert done[2]["node"] == by_url[stack.nodes[1].url]  # type: ignore[attr-defined]

    asyncio.run(run())


@pytest.mark.parametrize(("sent", "code"), [
    ("{oops", "bad_json"),
    ("[1]", "bad_json"),
    (json.dumps({"type": "dance"}), "unknown_type"),
    (json.dumps({"type": "chat", "id": 1, "messages": [{"role": "user", "content": "x"}]}),
     "missing_model"),
    (json.dumps({"type": "chat", "id": 1, "model": "phi3", "messages": "x"}), "bad_field"),
    (chat(1, "phi3", "x" * 5000), "message_too_large"),
    (chat(1, "nope"), "model_not_found"),
])
def test_bad_messages_get_error_codes_and_socket_stays(stack: Stack, sent: str,
                                                       code: str) -> None:
    async def run() -> None:
        async with websockets.connect(stack.ws("hub")) as ws:
            await until(ws, "nodes")
            await ws.send(sent)
            error = await until(ws, "error")
            assert error["code"] == code and error["message"]
            await ws.send(chat(9, "phi3"))
            assert (await until(ws, "done"))["id"] == 9

    asyncio.run(run())


def test_nodes_are_pushed_when_the_pool_changes(stack: Stack) -> None:
    spare = stack.nodes[2]  # type: ignore[attr-defined]

    async def run() -> None:
        async with websockets.connect(stack.ws("fallback")) as ws:
            assert len((await until(ws, "nodes"))["nodes"]) == 2
            status, node = http("POST", stack.url("inference") + "/api/v1/nodes",
                                {"url": spare.url})
            assert status == 201
            while True:
                pushed = await until(ws, "nodes")
                if any(n["url"] == spare.url and n["healthy"] for n in pushed["nodes"]):
                    break
            http("DELETE", stack.url("inference") + f"/api/v1/nodes/{node['id']}")
            while len((await until(ws, "nodes"))["nodes"]) != 2:
                pass

    asyncio.run(run())


def test_client_leaving_mid_chat_leaks_nothing(stack: Stack) -> None:
    async def run() -> None:
        async with websockets.connect(stack.ws("hub")) as ws:
            await until(ws, "nodes")
            await ws.send(chat(1, "llama3.2", " ".join("w" * 200)))
            await until(ws, "chunk")
        async with websockets.connect(stack.ws("hub")) as ws:
            await until(ws, "nodes")
            await ws.send(chat(2, "llama3.2"))
            assert (await until(ws, "done"))["content"].startswith("Hello")

    asyncio.run(run())
    _, cluster = http("GET", stack.url("inference") + "/api/v1/cluster")
    assert cluster["in_flight"] == 0


def test_terminal_chat_falls_back_from_gateway_to_hub(stack: Stack) -> None:
    argv = stack.argv("chat", "--model", "phi3", "are you there")
    first = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "Hello from phi3. You said: are you there"
    assert "connected to gateway" in first.stderr
    stack.procs["gateway"].stop()
    try:
        second = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0, second.stderr
        assert "connected to hub" in second.stderr and "gateway" in second.stderr
    finally:
        stack.start("gateway")
