"""A stranger's redis on the stack's redis port is never the revocation store."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from ollamamax_stack.registry import load_registry
from tests.integration.services_procs import (
    FAST,
    REGISTRY,
    Proc,
    Stack,
    fake_nodes,
    http,
    registry_ports,
    spawn,
    wait_http,
    wait_until,
    ws_chat_status,
)
from tests.portbase import free_offset, free_port

pytestmark = pytest.mark.timeout(120)
KEY = "sk-redis-identity"
PASSWORD = "the-stacks-redis-password-0123456789abcdef"
HI = [{"role": "user", "content": "hi"}]


@dataclass
class Squatter:
    """The yes-redis process and the file of the commands it received."""

    proc: Proc
    log: Path

    def received(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def squat(port: int, tmp: Path) -> Squatter:
    log = tmp / f"squatter-{port}.commands"
    proc = spawn("yes-redis", [sys.executable, "-m", "tests.fakes.yes_redis", "--port",
                               str(port), "--log", str(log)], tmp / f"squatter-{port}.log")

    def listening() -> bool:
        assert proc.popen.poll() is None, proc.tail()
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, what=f"the squatter on port {port}")
    return Squatter(proc, log)


@contextlib.contextmanager
def squatted_stack(tmp: Path, env: dict[str, str]) -> Iterator[tuple[Stack, Squatter]]:
    """The default profile's stack, with a stranger's redis on its registry's redis port."""
    offset = free_offset(registry_ports())
    redis_port = load_registry(REGISTRY, offset=offset).services["redis"].primary_port
    squatter = squat(redis_port, tmp)
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    stack = Stack(offset, tmp / "run", {**FAST, "OLLAMA_NODES": nodes[0].url,
                                        "OLLAMAMAX_API_KEYS": KEY,
                                        "OLLAMAMAX_REDIS_CHECK": "0.2", **env})
    try:
        nodes[0].start()
        for service in ("inference", "gateway", "hub"):
            stack.start(service)
        yield stack, squatter
    finally:
        stack.stop_all()
        if nodes[0].proc is not None:
            nodes[0].proc.stop()
        squatter.proc.stop()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def assert_tokens_and_routing_work(stack: Stack) -> None:
    status, body = http("POST", stack.url("gateway") + "/auth/token", headers=bearer(KEY))
    assert status == 200, body
    token = body["access_token"]
    # Past several checks of the link: a store that said "revoked" would have said it by now.
    for _ in range(5):
        assert http("GET", stack.url("gateway") + "/auth/me", headers=bearer(token))[0] == 200
        assert http("GET", stack.url("inference") + "/api/tags", headers=bearer(token))[0] == 200
    assert ws_chat_status(stack.ws("hub") + f"?token={token}") is None
    # The gateway routes with the table its own service token fetched from inference.
    client = openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key=token, max_retries=0)
    answer = client.chat.completions.create(model="llama3.2", messages=HI)  # type: ignore[arg-type]
    assert answer.choices[0].message.content


def test_a_squatted_redis_port_of_the_default_profile_changes_nothing(tmp_path: Path) -> None:
    with squatted_stack(tmp_path, {}) as (stack, squatter):
        for service in ("gateway", "hub", "inference"):
            _, health = http("GET", stack.url(service) + "/health")
            assert health["store"] == "sqlite" and "redis" not in health, health
            assert health.get("rate_limit", {}).get("store", "memory") == "memory", health
        assert_tokens_and_routing_work(stack)
        assert "EXISTS" not in squatter.received()  # nobody asked the stranger anything


def test_a_redis_that_cannot_prove_it_knows_the_password_is_not_used(tmp_path: Path) -> None:
    password_file = tmp_path / "redis.password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    squatter = squat(port, tmp_path)
    try:
        env = {"OLLAMAMAX_REDIS_URL": url, "OLLAMAMAX_REDIS_PASSWORD_FILE": str(password_file)}
        with squatted_stack(tmp_path, env) as (stack, _):
            _, health = http("GET", stack.url("gateway") + "/health")
            assert health["store"] == "sqlite" and health["redis"]["up"] is False, health
            assert "password" in health["redis"]["error"], health
            assert_tokens_and_routing_work(stack)
            # Without a password to prove it with, redis is not used at all, and /health says so.
            b_port = free_port()
            plain = spawn("gateway b", stack.argv("serve", "gateway"), tmp_path / "b.log",
                          {**stack.env, "OLLAMAMAX_REDIS_PASSWORD_FILE": "", "PORT": str(b_port)})
            try:
                wait_http(plain, f"http://127.0.0.1:{b_port}/health/ready")
                _, health = http("GET", f"http://127.0.0.1:{b_port}/health")
                assert health["store"] == "sqlite" and health["redis"]["up"] is False, health
                assert "no password" in health["redis"]["error"], health
            finally:
                plain.stop()
        assert PASSWORD not in squatter.received()  # never sent to a redis that did not ask
        assert "EXISTS" not in squatter.received()
    finally:
        squatter.proc.stop()
