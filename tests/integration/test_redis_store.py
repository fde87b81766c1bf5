"""Redis, when it is up, holds the gateways' rate-limit windows and every service's revocations."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest
import redis

from ollamamax_stack.dependents.redis import redis_argv, write_config
from ollamamax_stack.services.common.secret import ensure_secret
from tests.integration.services_procs import (
    ROOT,
    Proc,
    Stack,
    fake_nodes,
    http,
    running_stack,
    spawn,
    wait_http,
    wait_until,
    ws_chat_status,
)
from tests.portbase import free_port

pytestmark = pytest.mark.timeout(120)
LIMIT = 4
KEYS = {"alice": "sk-alice", "bob": "sk-bob", "carol": "sk-carol", "dave": "sk-dave"}
HI = [{"role": "user", "content": "hi"}]


@dataclass
class RedisServer:
    """A real redis-server on a free port, no persistence; started and stopped by pid."""

    port: int
    directory: Path
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def password_file(self) -> Path:
        return self.directory / "redis.password"

    def start(self) -> RedisServer:
        program = shutil.which("redis-server")
        assert program, "redis-server is not installed (Debian package redis-server)"
        # As the full profile's launcher does: a generated password, in a 0600 config file.
        password = ensure_secret(self.password_file, "redis password").decode()
        config = write_config(self.directory / "redis", password)
        argv = redis_argv(Path(program), config, "127.0.0.1", self.port, self.directory)
        self.proc = spawn("redis-server", argv, self.directory / "redis.log",
                          {"NOTIFY_SOCKET": ""})
        client = redis.Redis(port=self.port, password=password, socket_connect_timeout=1)

        def answers() -> bool:
            assert self.proc is not None and self.proc.popen.poll() is None, self.proc.tail()
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, what=f"redis-server on port {self.port}")
        client.close()
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL)


@dataclass
class Gateways:
    """Gateway A (the stack's) and gateway B (a second process on its own port), one hub."""

    stack: Stack
    redis: RedisServer
    b_url: str

    def url(self, which: str) -> str:
        return self.stack.url("gateway") if which == "a" else self.b_url

    def client(self, which: str, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url(which) + "/v1", api_key=key, max_retries=0)

    def health(self, url: str) -> dict[str, Any]:
        status, body = http("GET", url + "/health")
        assert status == 200, body
        return dict(body)

    def everyone(self) -> list[str]:
        return [self.url("a"), self.url("b"), self.stack.url("hub"), self.stack.url("inference")]


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    tmp = tmp_path_factory.mktemp("redis")
    keys = tmp / "keys"
    keys.write_text("".join(f"{key} {name}\n" for name, key in KEYS.items()))
    server = RedisServer(free_port(), tmp)
    second: Proc | None = None
    try:
        server.start()
        env = {"OLLAMAMAX_REDIS_URL": server.url, "OLLAMAMAX_REDIS_CHECK": "0.2",
               "OLLAMAMAX_REDIS_PASSWORD_FILE": str(server.password_file),
               "OLLAMAMAX_RATE_LIMIT": str(LIMIT), "OLLAMAMAX_API_KEYS_FILE": str(keys)}
        with running_stack(tmp, fake_nodes(tmp, [("a", "llama3.2", [])]),
                           ["inference", "gateway", "hub"], env=env) as stack:
            port = free_port()
            second = spawn("gateway b", stack.argv("serve", "gateway"), tmp / "gateway-b.log",
                           {**stack.env, "PORT": str(port)})
            b_url = f"http://127.0.0.1:{port}"
            wait_http(second, b_url + "/health/ready")
            yield Gateways(stack, server, b_url)
    finally:
        if second is not None:
            second.stop()
        server.kill()


def chat(client: openai.OpenAI) -> str:
    answer = client.chat.completions.create(model="llama3.2", messages=HI)  # type: ignore
    return str(answer.choices[0].message.content)


def token(url: str, key: str) -> str:
    status, body = http("POST", url + "/auth/token", headers={"Authorization": f"Bearer {key}"})
    assert status == 200, body
    return str(body["access_token"])


def revoke(url: str, issued: str) -> None:
    status, body = http("POST", url + "/auth/revoke",
                        headers={"Authorization": f"Bearer {issued}"})
    assert status == 200, body

def stores(g: Gateways) -> list[str]:
    return [g.health(url)["store"] for url in g.everyone()]


def test_health_says_redis_on_every_service(gateways: Gateways) -> None:
    for url in gateways.everyone():
        health = gateways.health(url)
        assert health["store"] == "redis", health
        assert health["redis"] == {"url": gateways.redis.url, "up": True, "error": None}
    for which in ("a", "b"):
        limit = gateways.health(gateways.url(which))["rate_limit"]
        assert limit == {"store": "redis", "per_minute": LIMIT}


def test_the_rate_limit_is_one_budget_across_both_gateways(gateways: Gateways) -> None:
    a, b = gateways.client("a", KEYS["bob"]), gateways.client("b", KEYS["bob"])
    for client in (a, b, a, b):  # LIMIT requests, spread over both
        assert chat(client)
    for client in (a, b):
        with pytest.raises(openai.RateLimitError) as caught:
            chat(client)
        assert caught.value.status_code == 429
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.type == "rate_limit_error"
        assert f"{LIMIT} requests per minute" in caught.value.message
    # Another caller has a budget of its own.
    assert chat(gateways.client("b", KEYS["alice"]))


def test_a_token_revoked_at_one_gateway_is_refused_everywhere(gateways: Gateways) -> None:
    issued = token(gateways.url("a"), KEYS["alice"])
    assert gateways.client("b", issued).models.list().data
    assert ws_chat_status(gateways.stack.ws("hub") + f"?token={issued}") is None
    revoke(gateways.url("a"), issued)
    for which in ("a", "b"):
        with pytest.raises(openai.AuthenticationError) as caught:
            gateways.client(which, issued).models.list()
        assert caught.value.code == "token_revoked"
    assert ws_chat_status(gateways.stack.ws("hub") + f"?token={issued}") == 401
    inference = ollama.Client(host=gateways.stack.url("inference"),
                              headers={"Authorization": f"Bearer {issued}"})
    with pytest.raises(ollama.ResponseError) as refused:
        inference.list()
    assert refused.value.status_code == 401


def test_without_redis_running_requests_use_memory_and_redis_is_used_again_when_back(
        gateways: Gateways) -> None:
    a, b = gateways.client("a", KEYS["carol"]), gateways.client("b", KEYS["carol"])
    gateways.redis.kill()
    # The first request after the kill meets a dead connection: it is served from memory.
    assert chat(a) and chat(b)
    # Revocations fall back to the run dir's SQLite file; rate limits to memory.
    wait_until(lambda: stores(gateways) == ["sqlite"] * 4, what="every service on sqlite")
    health = gateways.health(gateways.url("a"))
    assert health["redis"]["up"] is False and health["redis"]["error"]
    assert health["rate_limit"]["store"] == "memory"
    assert chat(a) and chat(b)
    # Revoked while redis is away: refused here at once, everywhere once redis is back.
    issued = token(gateways.url("a"), KEYS["dave"])
    revoke(gateways.url("a"), issued)
    with pytest.raises(openai.AuthenticationError):
        gateways.client("a", issued).models.list()
    gateways.redis.start()
    wait_until(lambda: stores(gateways) == ["redis"] * 4, what="every service back on redis")
    with pytest.raises(openai.AuthenticationError) as caught:
        gateways.client("b", issued).models.list()
    assert caught.value.code == "token_revoked"
    assert ws_chat_status(gateways.stack.ws("hub") + f"?token={issued}") == 401


def test_without_redis_at_all_a_gateway_uses_memory(gateways: Gateways,
                                                    tmp_path: Path) -> None:
    port, nobody = free_port(), free_port()
    env = {**gateways.stack.env, "PORT": str(port),
           "OLLAMAMAX_REDIS_URL": f"redis://127.0.0.1:{nobody}"}
    alone = spawn("gateway alone", gateways.stack.argv("serve", "gateway"),
                  tmp_path / "gateway.log", env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(alone, url + "/health/ready")
        health = gateways.health(url)
        assert health["store"] == "sqlite" and health["rate_limit"]["store"] == "memory"
        assert health["redis"]["up"] is False and "Connection" in health["redis"]["error"]
        assert chat(openai.OpenAI(base_url=url + "/v1", api_key=KEYS["alice"], max_retries=0))
    finally:
        alone.stop()


def test_a_bad_redis_url_is_one_line_naming_the_variable(gateways: Gateways) -> None:
    env = {**os.environ, **gateways.stack.env, "PORT": str(free_port()),
           "OLLAMAMAX_REDIS_URL": "http://x"}
    done = subprocess.run(gateways.stack.argv("serve", "gateway"), env=env, capture_output=True,
                          text=True, timeout=30, cwd=ROOT,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "OLLAMAMAX_REDIS_URL" in done.stderr


def test_a_redis_that_refuses_the_stacks_password_is_not_used(gateways: Gateways,
                                                              tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password-of-this-redis-0123456789\n")
    wrong.chmod(0o600)
    port = free_port()
    env = {**gateways.stack.env, "PORT": str(port),
           "OLLAMAMAX_REDIS_PASSWORD_FILE": str(wrong)}
    alone = spawn("gateway wrong password", gateways.stack.argv("serve", "gateway"),
                  tmp_path / "gateway.log", env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(alone, url + "/health/ready")
        health = gateways.health(url)
        assert health["store"] == "sqlite" and health["redis"]["up"] is False, health
        assert "AUTH with the stack's password failed" in health["redis"]["error"], health
    finally:
        alone.stop()
