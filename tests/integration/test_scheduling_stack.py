"""Slots stack-wide (issue 19): two gateway workers and the hub under `up`, three stand-in nodes
of two slots each; no node ever holds more than two requests, and all are answered."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets

from ollamamax_stack.handoff.paths import probe_prefix, probe_socket
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.rpc import Supervisor
from tests.fixtures.stacks.harness import Stack, held_config
from tests.integration.services_procs import FakeNode, fake_nodes, http

pytestmark = pytest.mark.timeout(240)
SLOTS = 2
TEXT = " ".join(f"w{i}" for i in range(6))  # a reply of ~11 tokens: ~0.3 s at 0.03 s a token
HUB = """
[services.hub]
port = 23101
command = "ollamamax serve hub"
depends_on = ["inference"]
readiness = { http = "/health/ready", timeout = 30 }
"""


def with_workers_and_hub(text: str) -> str:
    """The held stack with two gateway workers and a hub."""
    assert "restart = { limit" in text
    return text.replace("restart = { limit", "workers = 2\nrestart = { limit", 1) + HUB


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[FakeNode]]]:
    tmp = tmp_path_factory.mktemp("slots")
    made = Stack("held", tmp / "run", held_config(tmp, with_workers_and_hub))
    # The nodes take 8 at once themselves: only the stack's slots keep them at 2.
    args = ["--token-delay", "0.03", "--num-parallel", "8"]
    nodes = fake_nodes(tmp, [("a", "llama3.2", args), ("b", "llama3.2", args),
                             ("c", "llama3.2", args)])
    nodes[0].port = made.registry.services["ollama"].primary_port  # the registry's Ollama
    env = {"OLLAMAMAX_HEALTH_INTERVAL": "0.2", "OLLAMAMAX_DRAIN_TIMEOUT": "5",
           "OLLAMA_NODES": ",".join(f"{n.url};slots={SLOTS}" for n in nodes)}
    try:
        for node in nodes:
            node.start()
        done = made.cli("up", "-d", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        yield made, nodes
    finally:
        made.cleanup()
        for node in nodes:
            if node.proc is not None:
                node.proc.stop()


def stats(node: FakeNode) -> dict[str, Any]:
    status, body = http("GET", node.url + "/_fake/stats")
    assert status == 200, body
    return dict(body)


async def gateway_chat(url: str, index: int) -> str:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                                timeout=120)
    messages: Any = [{"role": "user", "content": f"{TEXT} g{index}"}]
    if index % 2:
        answer = await client.chat.completions.create(model="llama3.2", messages=messages)
        return str(answer.choices[0].message.content)
    pieces = []
    async for chunk in await client.chat.completions.create(model="llama3.2",
                                                             messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    return "".join(pieces)


async def hub_chat(url: str, index: int) -> str:
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "nodes"
        await ws.send(json.dumps({"type": "chat", "id": index, "model": "llama3.2",
                                  "messages": [{"role": "user", "content": f"{TEXT} h{index}"}]}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "done":
                return str(message["content"])
            assert message["type"] == "chunk", message


def test_24_requests_over_3_nodes_of_2_slots_never_exceed_a_slot(
        stack: tuple[Stack, list[FakeNode]]) -> None:
    made, nodes = stack
    registry = made.registry
    gateway = registry.url(registry.services["gateway"])
    hub = registry.url(registry.services["hub"]).replace("http://", "ws://") + "/chat"
    for node in nodes:
        http("POST", node.url + "/_fake/stats/reset")

    async def run() -> list[str]:
        calls = [gateway_chat(gateway, i) for i in range(16)]
        calls += [hub_chat(hub, i) for i in range(8)]
        return list(await asyncio.gather(*calls))

    answers = asyncio.run(run())
    assert len(answers) == 24
    assert all(a.startswith("Hello from llama3.2. You said: w0") for a in answers), answers
    seen = {node.name: stats(node) for node in nodes}
    print({name: (s["requests"], s["most_held"]) for name, s in seen.items()}, file=sys.stderr)
    assert sum(s["requests"] for s in seen.values()) == 24
    assert all(s["most_held"] <= SLOTS for s in seen.values()), seen
    assert max(s["most_held"] for s in seen.values()) == SLOTS  # the slots were used
    assert all(s["busy"] == 0 for s in seen.values())


def test_a_killed_worker_frees_its_slots_at_once(stack: tuple[Stack, list[FakeNode]],
                                                 tmp_path: Path) -> None:
    """A process that holds every slot of a node and dies by SIGKILL leaves them free."""
    made, nodes = stack
    from ollamamax_stack.services.routing.node import node_id

    holder = tmp_path / "hold.py"
    holder.write_text(
        "import fcntl, os, sys, time\n"
        # A node no request has reached yet has no slot folder (routing/slots.py makes it on
        # first use, as here): warm-first sends nothing to a cold node while a warm one has room.
        "[os.makedirs(os.path.dirname(p), exist_ok=True) for p in sys.argv[1:]]\n"
        "fds = [os.open(p, os.O_RDWR | os.O_CREAT) for p in sys.argv[1:]]\n"
        "[fcntl.flock(fd, fcntl.LOCK_EX) for fd in fds]\n"
        "print('held', flush=True)\ntime.sleep(600)\n")
    folder = made.run_dir / "slots"
    paths = [str(folder / node_id(n.url) / str(i)) for n in nodes for i in range(SLOTS)]
    proc = subprocess.Popen([sys.executable, str(holder), *paths], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        url = made.registry.url(made.registry.services["gateway"])
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                               timeout=60)

        def chat() -> str:
            answer = client.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}])
            return str(answer.choices[0].message.content)

        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(chat)
            # Every slot is held elsewhere: the request waits in the gateway's queue.
            from tests.integration.services_procs import wait_until

            wait_until(lambda: queue_depth(made) >= 1, what="the request to queue")
            assert not waiting.done()
            proc.kill()
            assert waiting.result(timeout=30) == "Hello from llama3.2. You said: hi"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def queue_depth(made: Stack) -> float:
    """Requests waiting in the queues of the gateway's workers (each one's /metrics)."""
    infos = Supervisor(RunPaths(made.run_dir).socket).all_info()
    total = 0.0
    for slot, info in infos.items():
        if not slot.startswith("gateway.") or info.state != "RUNNING":
            continue
        path = probe_socket(probe_prefix(made.run_dir, slot, ["main"]), "main")
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(str(path))
            conn.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            text = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
        total += sum(float(line.split()[1]) for line in text.splitlines()
                     if line.startswith("ollamamax_queue_depth "))
    return total
