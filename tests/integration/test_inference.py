"""The inference service as one big Ollama: the official `ollama` client against real processes."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.services_procs import Stack, fake_nodes, http, running_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("inference")
    # llama3.2 loaded on both: equal warm nodes share its requests (a cold one waits).
    nodes = fake_nodes(tmp, [("a", "llama3.2,qwen2.5:0.5b",
                              ["--token-delay", "0.002", "--warm", "llama3.2"]),
                             ("b", "llama3.2", ["--token-delay", "0.002", "--warm", "llama3.2"]),
                             ("c", "phi3", [])])
    with running_stack(tmp, nodes, ["inference"],
                       env={"OLLAMAMAX_MAX_BODY": "65536",
                            "OLLAMAMAX_ALLOW_NODE_REGISTRATION": "1"}) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def client(stack: Stack) -> ollama.Client:
    return ollama.Client(host=stack.url("inference"))


def node_ids(stack: Stack) -> dict[str, str]:
    _, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    return {n["url"]: n["id"] for n in body["nodes"]}


def test_tags_are_merged_over_nodes_without_duplicates(stack: Stack) -> None:
    names = [m.model for m in client(stack).list().models]
    assert names == ["llama3.2:latest", "phi3:latest", "qwen2.5:0.5b"]


def test_chat_streams_through_and_whole(stack: Stack) -> None:
    pieces = [part.message.content for part in client(stack).chat(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True)]
    assert "".join(pieces) == "Hello from llama3.2. You said: hi"
    assert len(pieces) > 3  # token by token, not one blob
    whole = client(stack).chat(model="phi3", messages=[{"role": "user", "content": "yo"}])
    assert whole.message.content == "Hello from phi3. You said: yo"
    assert whole.done_reason == "stop" and whole.eval_count == 6


def test_generate_embed_show_ps(stack: Stack) -> None:
    c = client(stack)
    assert c.generate(model="qwen2.5:0.5b", prompt="x y", options={"num_predict": 2}
                      ).response == "Hello from"
    embedded = c.embed(model="phi3", input=["one", "two"])
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) == 8
    assert len(c.embeddings(model="phi3", prompt="one").embedding) == 8
    assert c.show("phi3").modelfile == "FROM phi3"
    assert {m.model for m in c.ps().models} >= {"phi3:latest"}


def test_models_are_routed_to_the_nodes_that_have_them(stack: Stack) -> None:
    a, b, c = stack.nodes  # type: ignore[attr-defined]
    before = {n.name: len(n.calls()) for n in (a, b, c)}
    for _ in range(4):
        client(stack).chat(model="phi3", messages=[{"role": "user", "content": "x"}])
        client(stack).generate(model="qwen2.5:0.5b", prompt="x")
    after = {n.name: len(n.calls()) for n in (a, b, c)}
    assert after["c"] - before["c"] == 4  # only c has phi3
    assert after["a"] - before["a"] == 4  # only a has qwen
    assert after["b"] == before["b"]
    # A model warm on two nodes spreads over both (least in flight, turns on ties).
    for _ in range(6):
        client(stack).chat(model="llama3.2", messages=[{"role": "user", "content": "x"}])
    spread = {n.name: len(n.calls()) for n in (a, b)}
    assert spread["a"] > after["a"] and spread["b"] > after["b"]


def test_unknown_model_is_a_404_naming_it(stack: Stack) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client(stack).chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404 and "nope" in caught.value.error


@pytest.mark.parametrize(("body", "needle"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"messages": []}', "missing field 'model'"),
    (b'{"model": 7, "messages": []}', "'model' must be a string"),
    (b'{"model": "phi3", "messages": "hi"}', "'messages' must be an array"),
    (b'{"model": "phi3", "messages": [], "stream": "yes"}', "'stream' must be a boolean"),
])
def test_bad_input_is_a_clear_400(stack: Stack, body: bytes, needle: str) -> None:
    import urllib.request
    request = urllib.request.Request(stack.url("inference") + "/api/chat", data=body,
                                     method="POST")
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("accepted bad input")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert needle in exc.read().decode()


def test_oversized_body_is_413_and_service_keeps_serving(stack: Stack) -> None:
    big = {"model": "phi3", "messages": [{"role": "user", "content": "x" * 100_000}]}
    status, body = http("POST", stack.url("inference") + "/api/chat", big)
    assert status == 413 and "too large" in body["error"]
    assert client(stack).chat(model="phi3", messages=[{"role": "user", "content": "ok"}]).done


def test_nodes_can_be_added_and_removed_at_run_time(stack: Stack) -> None:
    base = stack.url("inference") + "/api/v1/nodes"
    status, node = http("POST", base, {"url": "http://127.0.0.1:9"})
    assert status == 201 and node["url"] == "http://127.0.0.1:9"
    assert http("POST", base, {"url": "http://127.0.0.1:9"})[0] == 409
    assert http("POST", base, {"url": "ftp://x"})[0] == 400
    assert http("POST", base, {"nourl": 1})[0] == 400
    _, listing = http("GET", base)
    assert node["id"] in {n["id"] for n in listing["nodes"]}
    assert http("DELETE", f"{base}/{node['id']}")[0] == 200
    assert http("DELETE", f"{base}/{node['id']}")[0] == 404
    _, models = http("GET", stack.url("inference") + "/api/v1/models")
    ids = node_ids(stack)
    a, _, c = stack.nodes  # type: ignore[attr-defined]
    assert {"name": "phi3:latest", "nodes": [ids[c.url]],
            "healthy_nodes": [ids[c.url]]} in models["models"]
    _, cluster = http("GET", stack.url("inference") + "/api/v1/cluster")
    assert cluster["nodes"] == 3 and cluster["healthy_nodes"] == 3 and cluster["models"] == 3


def test_ready_health_and_status_page(stack: Stack) -> None:
    status, ready = http("GET", stack.url("inference") + "/health/ready")
    assert status == 200 and ready == {"ready": True, "degraded": False, "reasons": []}
    _, health = http("GET", stack.url("inference") + "/health")
    assert health["service"] == "inference" and health["auth"] == "off"
    status, page = http("GET", stack.url("web") + "/")
    assert status == 200 and "status.json" in page
    _, data = http("GET", stack.url("web") + "/status.json")
    assert data["cluster"]["nodes"] == 3 and len(data["nodes"]) == 3


def _samples(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, text = http("GET", stack.url("inference") + "/metrics")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_and_move_with_traffic(stack: Stack) -> None:
    key = ("http_requests_total", (("method", "POST"), ("route", "/api/chat"),
                                   ("status", "200")))
    before = _samples(stack).get(key, 0.0)
    for _ in range(3):
        client(stack).chat(model="phi3", messages=[{"role": "user", "content": "x"}])
    after = _samples(stack)
    assert after[key] == before + 3
    ids = node_ids(stack)
    c = stack.nodes[2]  # type: ignore[attr-defined]
    assert after[("ollamamax_node_up", (("node", ids[c.url]), ("url", c.url)))] == 1.0
    assert after[("ollamamax_node_requests_total", (("node", ids[c.url]),))] >= 3
