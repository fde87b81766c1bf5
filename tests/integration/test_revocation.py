"""A revoked JWT is refused by every service, and still after a kill -9 and restart (no redis)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.integration.services_procs import (
    Stack,
    fake_nodes,
    http,
    running_stack,
    ws_chat_status,
)

pytestmark = pytest.mark.timeout(120)
KEY = "sk-revocation-test"
ADMIN = "sk-revocation-admin"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("revocation")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference", "gateway", "hub"],
                       env={"OLLAMAMAX_API_KEYS": KEY, "OLLAMAMAX_ADMIN_KEYS": ADMIN}) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_a_revocation_is_seen_by_every_service_and_survives_kill_9(stack: Stack) -> None:
    status, body = http("POST", stack.url("gateway") + "/auth/token", headers=bearer(KEY))
    assert status == 200, body
    token = body["access_token"]
    assert http("GET", stack.url("inference") + "/api/tags", headers=bearer(token))[0] == 200
    assert ws_chat_status(stack.ws("hub") + f"?token={token}") is None

    status, body = http("POST", stack.url("gateway") + "/auth/revoke", headers=bearer(token))
    assert status == 200, body

    status, body = http("GET", stack.url("inference") + "/api/tags", headers=bearer(token))
    assert status == 401 and "revoked" in body["error"], body
    assert ws_chat_status(stack.ws("hub") + f"?token={token}") == 401
    assert http("GET", stack.url("gateway") + "/auth/me", headers=bearer(token))[0] == 401

    stack.procs["gateway"].stop(signal.SIGKILL)
    stack.start("gateway")
    status, body = http("GET", stack.url("gateway") + "/auth/me", headers=bearer(token))
    assert status == 401 and "revoked" in body["error"]["message"], body
    _, health = http("GET", stack.url("gateway") + "/health")
    assert health["store"] == "sqlite"
    # A fresh token of the same key still works: only the revoked one is refused.
    _, body = http("POST", stack.url("gateway") + "/auth/token", headers=bearer(KEY))
    assert http("GET", stack.url("gateway") + "/auth/me",
                headers=bearer(body["access_token"]))[0] == 200


def test_admin_keys_register_nodes_and_key_holders_see_node_urls_in_errors(
        stack: Stack) -> None:
    base = stack.url("inference") + "/api/v1/nodes"
    assert http("POST", base, {"url": "http://127.0.0.1:9"}, bearer(KEY))[0] == 403
    status, node = http("POST", base, {"url": "http://127.0.0.1:9"}, bearer(ADMIN))
    assert status == 201, node  # auth is on: registration is open to admin keys
    assert http("DELETE", f"{base}/{node['id']}", headers=bearer(ADMIN))[0] == 200
    fake = stack.nodes[0]  # type: ignore[attr-defined]
    fake.fail("500")
    try:
        status, body = http("POST", stack.url("inference") + "/api/chat",
                            {"model": "llama3.2", "messages": []}, bearer(KEY))
    finally:
        fake.fail("none")
    assert status == 503 and fake.url in body["error"], body


def test_metrics_and_the_status_page_need_credentials_when_keys_are_set(stack: Stack) -> None:
    for url in (stack.url("gateway") + "/metrics", stack.url("inference") + "/metrics",
                stack.url("web") + "/status.json"):
        assert http("GET", url)[0] == 401, url
        assert http("GET", url, headers=bearer(KEY))[0] == 200, url
    # The page itself holds no data; its script polls status.json with the page's ?token=.
    assert http("GET", stack.url("web") + "/")[0] == 200
    assert http("GET", stack.url("web") + f"/status.json?token={KEY}")[0] == 200
    for service in ("gateway", "inference", "hub"):  # liveness and readiness stay open
        assert http("GET", stack.url(service) + "/health")[0] == 200
