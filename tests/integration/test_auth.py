"""One secret for the stack: API keys and gateway JWTs accepted by every service."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator

import jwt
import ollama
import openai
import pytest

from tests.integration.services_procs import (
    Stack,
    fake_nodes,
    http,
    running_stack,
    ws_chat_status,
)

pytestmark = pytest.mark.timeout(120)
KEY = "sk-test-123"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("auth")
    keys = tmp / "keys"
    keys.write_text(f"# keys of the test stack\n{KEY} alice\n")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference", "gateway", "hub"],
                       env={"OLLAMAMAX_API_KEYS_FILE": str(keys),
                            "OLLAMAMAX_API_KEYS": "sk-other"}) as running:
        yield running


def gateway(stack: Stack, key: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key=key or "",
                         max_retries=0)


def token(stack: Stack, **extra: object) -> str:
    status, body = http("POST", stack.url("gateway") + "/auth/token", extra or None,
                        {"Authorization": f"Bearer {KEY}"})
    assert status == 200, body
    return str(body["access_token"])


def forged(stack: Stack, secret: bytes, **claims: object) -> str:
    now = int(time.time())
    base = {"sub": "mallory", "iss": "ollamamax", "aud": "ollamamax-stack", "iat": now,
            "exp": now + 600, **claims}
    return jwt.encode(base, secret, algorithm="HS256")

def test_without_credentials_401_and_health_stays_open(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway(stack, "sk-wrong").models.list()
    status, body = http("GET", stack.url("gateway") + "/v1/models")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert ws_chat_status(stack.ws("gateway")) == 401
    assert ws_chat_status(stack.ws("hub")) == 401
    assert http("GET", stack.url("inference") + "/api/tags")[0] == 401
    for service in ("gateway", "hub", "inference"):
        status, health = http("GET", stack.url(service) + "/health")
        assert status == 200 and health["auth"] == "api_keys"
        assert http("GET", stack.url(service) + "/health/ready")[0] == 200
        # /metrics names node URLs: with keys set it needs one too (README "Security").
        assert http("GET", stack.url(service) + "/metrics")[0] == 401
        assert http("GET", stack.url(service) + "/metrics",
                    headers={"Authorization": f"Bearer {KEY}"})[0] == 200


def test_an_api_key_is_accepted_everywhere(stack: Stack) -> None:
    answer = gateway(stack, KEY).chat.completions.create(model="llama3.2", messages=HI)  # type: ignore
    assert answer.choices[0].message.content
    assert gateway(stack, "sk-other").models.list().data
    assert ws_chat_status(stack.ws("hub") + f"?token={KEY}") is None
    inference = ollama.Client(host=stack.url("inference"), headers={
        "Authorization": f"Bearer {KEY}"})
    assert inference.chat(model="llama3.2", messages=HI).message.content


def test_a_gateway_token_is_accepted_by_every_service(stack: Stack) -> None:
    issued = token(stack)
    _, me = http("GET", stack.url("gateway") + "/auth/me",
                 headers={"Authorization": f"Bearer {issued}"})
    assert me["subject"] == "alice" and me["auth"] == "jwt"
    assert gateway(stack, issued).models.list().data
    assert ws_chat_status(stack.ws("gateway") + f"?token={issued}") is None
    assert ws_chat_status(stack.ws("hub") + f"?token={issued}") is None
    inference = ollama.Client(host=stack.url("inference"), headers={
        "Authorization": f"Bearer {issued}"})
    assert inference.list().models


def test_expired_wrong_secret_and_revoked_tokens_are_refused(stack: Stack) -> None:
    secret_file = stack.run_dir / "jwt.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip().encode()
    expired = forged(stack, secret, exp=int(time.time()) - 10)
    wrong = forged(stack, b"x" * 48)
    other_audience = forged(stack, secret, aud="someone-else")
    for bad in (expired, wrong, other_audience):
        with pytest.raises(openai.AuthenticationError):
            gateway(stack, bad).models.list()
        assert ws_chat_status(stack.ws("hub") + f"?token={bad}") == 401
    _, body = http("GET", stack.url("gateway") + "/v1/models",
                   headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in body["error"]["message"]
    # A token we forge with the right secret is accepted: the secret is what matters.
    assert gateway(stack, forged(stack, secret)).models.list().data
    revoked = token(stack)
    assert http("POST", stack.url("gateway") + "/auth/revoke",
                headers={"Authorization": f"Bearer {revoked}"})[0] == 200
    with pytest.raises(openai.AuthenticationError):
        gateway(stack, revoked).models.list()


def test_token_endpoint_refuses_bad_requests(stack: Stack) -> None:
    url = stack.url("gateway") + "/auth/token"
    assert http("POST", url)[0] == 401
    assert http("POST", url, {"api_key": "sk-nope"})[0] == 401
    assert http("POST", url, {"api_key": KEY, "expires_in": -1})[0] == 400
    status, body = http("POST", url, {"api_key": KEY, "expires_in": 60})
    assert status == 200 and body["expires_in"] == 60 and body["token_type"] == "bearer"
