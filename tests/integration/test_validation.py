"""Bad input gets a 400 in the service's JSON error shape, and never reaches a node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from tests.integration.services_procs import Stack, fake_nodes, http, running_stack

pytestmark = pytest.mark.timeout(120)
NESTED = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("validation")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference", "gateway"]) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def raw(url: str, method: str, path: str, body: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """A request with a body sent exactly as given: status, content type, parsed JSON."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body.encode() if body is not None else None,
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode()
        return resp.status, resp.headers.get("Content-Type", ""), json.loads(text)
    finally:
        conn.close()


def calls(stack: Stack) -> int:
    return len(stack.nodes[0].calls())  # type: ignore[attr-defined]


def message_of(service: str, body: Any) -> str:
    return str(body["error"]["message"] if service == "gateway" else body["error"])


@pytest.mark.parametrize("service,path", [("gateway", "/v1/chat/completions"),
                                          ("inference", "/api/chat")])
def test_deeply_nested_json_is_400(stack: Stack, service: str, path: str) -> None:
    status, _, body = raw(stack.url(service), "POST", path, NESTED)
    assert status == 400, body
    assert "JSON" in message_of(service, body)


def test_wait_nan_is_400(stack: Stack) -> None:
    for wait in ("nan", "-inf"):
        status, body = http("GET", stack.url("inference") + f"/api/v1/nodes?after=0&wait={wait}")
        assert status == 400 and "wait" in body["error"], body


@pytest.mark.parametrize("value", ["1e999", "NaN", "-Infinity"])
@pytest.mark.parametrize("service,path,messages", [
    ("gateway", "/v1/chat/completions", '[{"role": "user", "content": "hi"}]'),
    ("inference", "/api/chat", '[{"role": "user", "content": "hi"}]')])
def test_a_non_finite_number_is_400_and_not_forwarded(stack: Stack, value: str, service: str,
                                                      path: str, messages: str) -> None:
    before = calls(stack)
    options = (f'"temperature": {value}' if service == "gateway"
               else f'"options": {{"temperature": {value}}}')
    text = f'{{"model": "llama3.2", "messages": {messages}, {options}}}'
    status, _, body = raw(stack.url(service), "POST", path, text)
    assert status == 400, body
    assert calls(stack) == before


@pytest.mark.parametrize("messages", ['[5, "x", null]', '[{"role": 5, "content": "x"}]',
                                      '[{"content": "x"}]', '"hello"'])
def test_inference_chat_messages_must_be_message_objects(stack: Stack, messages: str) -> None:
    before = calls(stack)
    status, _, body = raw(stack.url("inference"), "POST", "/api/chat",
                          f'{{"model": "llama3.2", "messages": {messages}}}')
    assert status == 400 and "messages" in body["error"], body
    assert calls(stack) == before


def test_gateway_messages_must_be_message_objects(stack: Stack) -> None:
    status, _, body = raw(stack.url("gateway"), "POST", "/v1/chat/completions",
                          '{"model": "llama3.2", "messages": [5, "x", null]}')
    assert status == 400 and body["error"]["param"] == "messages", body


def test_unknown_fields_pass_through(stack: Stack) -> None:
    answer = openai.OpenAI(base_url=stack.url("gateway") + "/v1", api_key="x",
                           max_retries=0).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], user="alice",
        extra_body={"some_vendor_field": {"x": 1}})
    assert answer.choices[0].message.content
    status, _, body = raw(stack.url("inference"), "POST", "/api/chat",
                          '{"model": "llama3.2", "messages": [{"role": "user", "content": "hi",'
                          ' "images": []}], "stream": false, "keep_alive": "5m", "think": false}')
    assert status == 200 and body["done"], body


@pytest.mark.parametrize("service", ["gateway", "inference"])
def test_parser_errors_are_json_400(stack: Stack, service: str) -> None:
    status, kind, body = raw(stack.url(service), "GET", "/health", None,
                             {"X-Huge": "x" * 20_000})
    assert status == 400 and kind.startswith("application/json"), (status, kind)
    assert "header" in message_of(service, body).lower()
