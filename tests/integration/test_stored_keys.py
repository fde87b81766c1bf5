"""Keys from `ollamamax keys`: accepted by every service, refused stack-wide once revoked or
expired (SQLite in the run dir); the stored key's rate limit; last use written in batches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import ollama
import openai
import pytest
import websockets

from tests.integration.key_clients import (
    accepted_by,
    created_key,
    gateway_accepts,
    listed,
    revoked,
    seconds_until_refused,
)
from tests.integration.services_procs import Stack, fake_nodes, http, running_stack

pytestmark = pytest.mark.timeout(180)
ENV_KEY = "sk-env-still-works"
SERVICES = ["inference", "gateway", "hub", "fallback"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stored-keys")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    env = {"OLLAMAMAX_API_KEYS": ENV_KEY, "OLLAMAMAX_KEYS_LAST_USED_EVERY": "1"}
    with running_stack(tmp, nodes, SERVICES, env=env) as running:
        yield running


def urls(stack: Stack) -> dict[str, str]:
    return {name: stack.url(name) for name in ("gateway", "hub", "fallback", "inference")}


def test_a_created_key_works_everywhere_and_revoked_is_refused_within_a_second(
        stack: Stack) -> None:
    key = created_key(stack.argv(), "alice")
    assert accepted_by(urls(stack), key) == dict.fromkeys(urls(stack), True)
    _, health = http("GET", stack.url("gateway") + "/health")
    assert health["keys"]["store"] == "sqlite" and health["keys"]["active"] >= 1, health
    assert "alice" in listed(stack.argv())

    async def open_socket_then_revoke() -> tuple[dict[str, float], str]:
        # A socket opened before the revocation: its next chat is refused too.
        async with websockets.connect(stack.ws("hub"), additional_headers={
                "Authorization": f"Bearer {key}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "nodes"
            since = await asyncio.to_thread(revoked, stack.argv(), "alice")
            taken = await asyncio.to_thread(seconds_until_refused, urls(stack), key, since)
            await ws.send(json.dumps({"type": "chat", "id": 1, "model": "llama3.2",
                                      "messages": [{"role": "user", "content": "hi"}]}))
            reply = json.loads(await ws.recv())
            return taken, f"{reply.get('type')}: {reply.get('message', reply)}"

    taken, reply = asyncio.run(open_socket_then_revoke())
    print(f"\nrevoked key refused after (s, from `keys revoke` returning): {taken}")
    assert reply.startswith("error:") and "'alice' has been revoked" in reply, reply
    assert listed(stack.argv())["alice"]["state"] == "revoked"
    status, body = http("GET", stack.url("inference") + "/api/tags",
                        headers={"Authorization": f"Bearer {key}"})
    assert status == 401 and "'alice' has been revoked" in body["error"], body
    # The environment's key was never touched.
    assert gateway_accepts(stack.url("gateway"), ENV_KEY)


def test_an_expired_key_is_refused_by_every_service(stack: Stack) -> None:
    key = created_key(stack.argv(), "brief", "--expires", "10s")
    assert accepted_by(urls(stack), key) == dict.fromkeys(urls(stack), True)
    expires_at = listed(stack.argv())["brief"]["expires_at"]
    assert isinstance(expires_at, float)
    since = time.monotonic() + (expires_at - time.time())
    while time.monotonic() < since:  # until the instant it expires, then poll
        time.sleep(0.05)
    taken = seconds_until_refused(urls(stack), key, since)
    print(f"\nexpired key refused after (s, from its expiry): {taken}")
    assert listed(stack.argv())["brief"]["state"] == "expired"
    status, body = http("GET", stack.url("gateway") + "/v1/models",
                        headers={"Authorization": f"Bearer {key}"})
    assert status == 401 and body["error"]["code"] == "key_expired", body


def test_a_keys_rate_limit_is_enforced_by_every_service(stack: Stack) -> None:
    key = created_key(stack.argv(), "limited", "--rate-limit", "3")
    client = openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key=key, max_retries=0)
    for _ in range(3):
        assert client.models.list().data
    with pytest.raises(openai.RateLimitError, match="rate limit of 3 requests per minute"):
        client.models.list()
    # Without redis each service counts its own minute (README "Keys in a store").
    inference = ollama.Client(host=stack.url("inference"),
                              headers={"Authorization": f"Bearer {key}"})
    for _ in range(3):
        assert inference.list().models
    with pytest.raises(ollama.ResponseError) as limited:
        inference.list()
    assert limited.value.status_code == 429

    async def chats() -> list[str]:
        async with websockets.connect(stack.ws("hub"), additional_headers={
                "Authorization": f"Bearer {key}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "nodes"
            ends = []
            for chat_id in range(4):
                await ws.send(json.dumps({"type": "chat", "id": chat_id, "model": "llama3.2",
                                          "messages": [{"role": "user", "content": "hi"}]}))
                while (reply := json.loads(await ws.recv()))["type"] not in ("done", "error"):
                    pass
                ends.append(reply.get("code", reply["type"]))
            return ends

    assert asyncio.run(chats()) == ["done", "done", "done", "rate_limit_exceeded"]
    # Another key is not limited by it (the stack has no limit of its own here).
    assert all(gateway_accepts(stack.url("gateway"), ENV_KEY) for _ in range(5))


def test_a_token_traded_for_a_stored_key_ends_with_the_key(stack: Stack) -> None:
    key = created_key(stack.argv(), "trader")
    status, body = http("POST", stack.url("gateway") + "/auth/token",
                        headers={"Authorization": f"Bearer {key}"})
    assert status == 200, body
    token = body["access_token"]
    assert accepted_by({"inference": stack.url("inference")}, token) == {"inference": True}
    since = revoked(stack.argv(), "trader")
    taken = seconds_until_refused(urls(stack), token, since)
    print(f"\ntoken of a revoked key refused after (s): {taken}")


def test_last_use_is_recorded(stack: Stack) -> None:
    key = created_key(stack.argv(), "user-of-it")
    assert listed(stack.argv())["user-of-it"]["last_used"] is None
    before = time.time()
    assert gateway_accepts(stack.url("gateway"), key)
    deadline = time.monotonic() + 10
    while (used := listed(stack.argv())["user-of-it"]["last_used"]) is None:
        assert time.monotonic() < deadline, "last use never written"
        time.sleep(0.2)
    assert isinstance(used, float) and used >= before - 1
