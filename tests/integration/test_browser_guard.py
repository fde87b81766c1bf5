"""Hostile web pages: Host allowlist (DNS rebinding), Origin allowlist, JSON-only state changes."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

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
EVIL = "http://evil.example"
CORS = "http://localhost:3000"  # in the registry's cors list of gateway, hub and fallback


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("guard")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference", "gateway", "hub"],
                       env={"OLLAMAMAX_HOSTS": "ollamamax.lan"}) as running:
        yield running


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def node_count(stack: Stack) -> int:
    status, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    assert status == 200, body
    return len(body["nodes"])


@pytest.mark.parametrize("service,path", [("gateway", "/v1/models"), ("inference", "/api/tags"),
                                          ("hub", "/health"), ("web", "/status.json")])
def test_a_foreign_host_is_refused_with_403_json(stack: Stack, service: str, path: str) -> None:
    url = stack.url(service)
    status, body = http("GET", url + path, headers={"Host": f"evil.example:{port_of(url)}"})
    assert status == 403, body
    text = body["error"]["message"] if service == "gateway" else body["error"]
    assert "evil.example" in text and "Host" in text


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "ollamamax.lan"])
def test_local_and_declared_hosts_are_served(stack: Stack, host: str) -> None:
    url = stack.url("gateway")
    status, body = http("GET", url + "/v1/models", headers={"Host": f"{host}:{port_of(url)}"})
    assert status == 200, body


def test_an_origin_outside_cors_is_refused_on_http(stack: Stack) -> None:
    status, body = http("GET", stack.url("gateway") + "/v1/models", headers={"Origin": EVIL})
    assert status == 403 and "Origin" in body["error"]["message"], body
    status, body = http("GET", stack.url("inference") + "/api/tags", headers={"Origin": EVIL})
    assert status == 403, body


def test_a_cors_origin_and_the_same_origin_are_served(stack: Stack) -> None:
    url = stack.url("gateway")
    assert http("GET", url + "/v1/models", headers={"Origin": CORS})[0] == 200
    assert http("GET", url + "/v1/models", headers={"Origin": url})[0] == 200


@pytest.mark.parametrize("service", ["gateway", "hub"])
def test_a_websocket_from_a_foreign_origin_is_refused(stack: Stack, service: str) -> None:
    assert ws_chat_status(stack.ws(service), headers={"Origin": EVIL}) == 403
    assert ws_chat_status(stack.ws(service), headers={"Origin": CORS}) is None
    assert ws_chat_status(stack.ws(service)) is None  # a client without Origin (ollamamax chat)


def test_a_text_plain_post_is_refused_with_415(stack: Stack) -> None:
    before = node_count(stack)
    status, body = http("POST", stack.url("inference") + "/api/v1/nodes",
                        {"url": "http://127.0.0.1:9"}, {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in body["error"], body
    status, body = http("POST", stack.url("gateway") + "/auth/revoke", {},
                        {"Content-Type": "text/plain"})
    assert status == 415, body
    assert node_count(stack) == before


def test_node_registration_is_off_without_auth_or_the_switch(stack: Stack) -> None:
    before = node_count(stack)
    status, body = http("POST", stack.url("inference") + "/api/v1/nodes",
                        {"url": "http://127.0.0.1:9"})
    assert status == 403 and "OLLAMAMAX_ALLOW_NODE_REGISTRATION" in body["error"], body
    status, body = http("DELETE", stack.url("inference") + "/api/v1/nodes/n0000000")
    assert status == 403, body
    assert node_count(stack) == before


def test_clients_without_origin_work_as_before(stack: Stack) -> None:
    models = openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="x",
                           max_retries=0).models.list()
    assert [m.id for m in models.data] == ["llama3.2:latest"]
    answer = ollama.Client(host=stack.url("inference")).chat(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert answer.message.content
