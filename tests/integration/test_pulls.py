"""Pulls and deletes across the pool: the official `ollama` client against the real inference
service over three stand-in nodes; the registry's models ensured at start and on a join."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import pytest

from tests.integration.services_procs import (
    REGISTRY,
    ROOT,
    FakeNode,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("pulls")
    nodes = fake_nodes(tmp, [("a", "llama3.2", []), ("b", "qwen2.5:0.5b", []),
                             ("c", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference"]) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def nodes_of(stack: Stack) -> list[FakeNode]:
    return stack.nodes  # type: ignore[attr-defined, no-any-return]


def client(stack: Stack) -> ollama.Client:
    return ollama.Client(host=stack.url("inference"))


def node_tags(node: FakeNode) -> set[str]:
    status, body = http("GET", node.url + "/api/tags")
    assert status == 200, body
    return {m["name"] for m in body["models"]}


def ids(stack: Stack) -> dict[str, str]:
    """Node id by fake name."""
    _, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    by_url = {n["url"]: n["id"] for n in body["nodes"]}
    return {n.name: by_url[n.url] for n in nodes_of(stack)}


def raw_pull(stack: Stack, body: dict[str, Any]) -> list[dict[str, Any]]:
    """`POST /api/pull` read line by line, as curl shows it (the node field included)."""
    request = urllib.request.Request(stack.url("inference") + "/api/pull",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in resp if line.strip()]


def test_a_streamed_pull_reaches_every_node(stack: Stack) -> None:
    parts = list(client(stack).pull("phi3", stream=True))
    statuses = [p.status for p in parts]
    assert statuses.count("pulling manifest") == 3  # one per node
    assert statuses.count("success") == 4  # each node's, then the cluster's last
    assert statuses[-1] == "success"
    downloads = [p for p in parts if p.digest]
    assert downloads and all(p.total for p in downloads)
    assert max(p.completed or 0 for p in downloads) == max(p.total or 0 for p in downloads)
    for node in nodes_of(stack):
        assert "phi3:latest" in node_tags(node), node.name
    # At once in the pool's view: the merged tags and the routing table list it.
    assert "phi3:latest" in {m.model for m in client(stack).list().models}
    answer = client(stack).chat(model="phi3", messages=[{"role": "user", "content": "hi"}])
    assert answer.message.content == "Hello from phi3. You said: hi"


def test_each_progress_object_names_its_node(stack: Stack) -> None:
    lines = raw_pull(stack, {"model": "all-minilm"})
    known = ids(stack)
    progress, last = lines[:-1], lines[-1]
    assert last == {"status": "success"}
    assert {line["node"] for line in progress} == set(known.values())
    for node_id in known.values():
        own = [line["status"] for line in progress if line["node"] == node_id]
        assert own[0] == "pulling manifest"
        assert own[-3:] == ["verifying sha256 digest", "writing manifest", "success"]


def test_a_whole_pull_answers_once_all_nodes_are_done(stack: Stack) -> None:
    answer = client(stack).pull("mistral")  # stream=False: one object
    assert answer.status == "success"
    for node in nodes_of(stack):
        assert "mistral:latest" in node_tags(node), node.name
    status, body = http("POST", stack.url("inference") + "/api/pull",
                        {"model": "mistral", "stream": False})
    assert status == 200
    assert sorted(n["node"] for n in body["nodes"]) == sorted(ids(stack).values())


def test_an_unknown_model_fails_naming_every_node(stack: Stack) -> None:
    known = ids(stack)
    with pytest.raises(ollama.ResponseError) as whole:
        client(stack).pull("no-such-model")
    assert whole.value.status_code == 500  # Ollama's own status for it
    with pytest.raises(ollama.ResponseError) as streamed:
        list(client(stack).pull("no-such-model", stream=True))
    for error in (whole.value.error, streamed.value.error):
        assert "failed on 3 of 3 nodes" in error
        assert "pull model manifest: file does not exist" in error
        for node_id in known.values():
            assert f"node {node_id} (" in error


def test_one_failing_node_is_named_and_the_others_still_pull(stack: Stack) -> None:
    a, b, c = nodes_of(stack)
    known = ids(stack)
    b.fail("500")
    try:
        lines = raw_pull(stack, {"model": "gemma2:2b"})
    finally:
        b.fail("none")
    failed = [line for line in lines if line.get("status") == "failed"]
    assert [line["node"] for line in failed] == [known["b"]]
    assert "injected failure" in failed[0]["error_detail"]
    assert lines[-1]["error"].startswith("pull of 'gemma2:2b' failed on 1 of 3 nodes: "
                                         f"node {known['b']} (")
    assert "gemma2:2b" in node_tags(a) and "gemma2:2b" in node_tags(c)
    assert "gemma2:2b" not in node_tags(b)


def test_nodes_and_replicas_choose_where_it_goes(stack: Stack) -> None:
    a, b, c = nodes_of(stack)
    status, body = http("POST", stack.url("inference") + "/api/pull",
                        {"model": "tinyllama", "stream": False, "nodes": [b.url]})
    assert status == 200, body
    assert [("tinyllama:latest" in node_tags(n)) for n in (a, b, c)] == [False, True, False]
    status, body = http("POST", stack.url("inference") + "/api/pull",
                        {"model": "tinyllama", "stream": False, "replicas": 2})
    assert status == 200, body
    holders = [n.name for n in (a, b, c) if "tinyllama:latest" in node_tags(n)]
    assert len(holders) == 2 and "b" in holders
    assert [n["status"] for n in body["nodes"]].count("present") == 1
    status, body = http("POST", stack.url("inference") + "/api/pull",
                        {"model": "tinyllama", "nodes": ["nowhere:1"]})
    assert status == 400 and "no node 'nowhere:1' in the pool" in body["error"]


def test_delete_removes_it_from_every_node(stack: Stack) -> None:
    client(stack).pull("smollm:135m")
    assert client(stack).delete("smollm:135m").status == "success"
    for node in nodes_of(stack):
        assert "smollm:135m" not in node_tags(node), node.name
    assert "smollm:135m" not in {m.model for m in client(stack).list().models}
    with pytest.raises(ollama.ResponseError) as missing:
        client(stack).delete("smollm:135m")
    assert missing.value.status_code == 404
    assert missing.value.error == "model 'smollm:135m' not found"


def registry_with_models(tmp: Path, models: list[str]) -> Path:
    """The project's registry with `[services.ollama] models = [...]`."""
    text = REGISTRY.read_text().replace('root = ".."', f'root = "{ROOT}"', 1)
    text = text.replace("[services.ollama]\n",
                        f"[services.ollama]\nmodels = {json.dumps(models)}\n", 1)
    path = tmp / "ports.toml"
    path.write_text(text)
    return path


def test_registry_models_are_pulled_at_start_and_when_a_node_joins(tmp_path: Path) -> None:
    registry = registry_with_models(tmp_path, ["llama3.2:1b", "no-such-model"])
    a, b, joining = fake_nodes(tmp_path, [("a", "llama3.2", []), ("b", "phi3", []),
                                          ("d", "phi3", [])])
    with running_stack(tmp_path, [a, b], ["inference"], registry=registry,
                       env={"OLLAMAMAX_ALLOW_NODE_REGISTRATION": "1"}) as running:
        wait_until(lambda: all("llama3.2:1b" in node_tags(n) for n in (a, b)),
                   what="llama3.2:1b on a and b")
        joining.start()
        try:
            status, added = http("POST", running.url("inference") + "/api/v1/nodes",
                                 {"url": joining.url})
            assert status == 201, added
            wait_until(lambda: "llama3.2:1b" in node_tags(joining), what="llama3.2:1b on d")
            # The model no registry has is a reason of its own for each node, never silent.
            def failures() -> list[str]:
                _, ready = http("GET", running.url("inference") + "/health/ready")
                return [r for r in ready["reasons"] if "no-such-model" in r]
            found = wait_until(lambda: len(failures()) == 3 and failures(),
                               what="a failed pull reason per node")
            for node_id in (added["id"], *ids_by_url(running, a, b)):
                assert any(f"node {node_id} (" in r and "file does not exist" in r
                           for r in found), node_id
        finally:
            if joining.proc is not None:
                joining.proc.stop()


def ids_by_url(stack: Stack, *nodes: FakeNode) -> list[str]:
    _, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    by_url = {n["url"]: n["id"] for n in body["nodes"]}
    return [by_url[n.url] for n in nodes]


def test_with_keys_a_pull_or_delete_needs_an_admin_key(tmp_path: Path) -> None:
    (a,) = fake_nodes(tmp_path, [("a", "llama3.2", [])])
    env = {"OLLAMAMAX_API_KEYS": "sk-user-1234567890abcdef",
           "OLLAMAMAX_ADMIN_KEYS": "sk-admin-1234567890abcdef"}
    with running_stack(tmp_path, [a], ["inference"], env=env) as running:
        url = running.url("inference")
        user = ollama.Client(host=url, headers={"Authorization":
                                                "Bearer sk-user-1234567890abcdef"})
        with pytest.raises(ollama.ResponseError) as refused:
            user.pull("phi3")
        assert refused.value.status_code == 403
        assert "needs an admin key" in refused.value.error
        with pytest.raises(ollama.ResponseError) as anonymous:
            ollama.Client(host=url).delete("llama3.2")
        assert anonymous.value.status_code == 401
        admin = ollama.Client(host=url, headers={"Authorization":
                                                 "Bearer sk-admin-1234567890abcdef"})
        assert admin.pull("phi3").status == "success"
        with pytest.raises(ollama.ResponseError) as failed:
            admin.pull("no-such-model")
        assert f"({a.url.removeprefix('http://')})" in failed.value.error  # a key holder sees it
        assert "phi3:latest" in node_tags(a) and "llama3.2:latest" in node_tags(a)


def pulls_of(node: FakeNode) -> list[str]:
    """The outcome of each pull the stand-in was asked for."""
    return [p["outcome"] for p in http("GET", node.url + "/_fake/pulls")[1]["pulls"]]


def test_a_client_that_leaves_stops_the_nodes_pulls(tmp_path: Path) -> None:
    slow = fake_nodes(tmp_path, [("a", "llama3.2", ["--pull-seconds", "60"]),
                                 ("b", "llama3.2", ["--pull-seconds", "60"])])
    with running_stack(tmp_path, slow, ["inference"]) as running:
        request = urllib.request.Request(running.url("inference") + "/api/pull",
                                         data=b'{"model": "phi3"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            resp.readline()  # the first progress object: the pulls run
            wait_until(lambda: all(pulls_of(n) == ["running"] for n in slow), what="two pulls")
        wait_until(lambda: all(pulls_of(n) == ["cancelled"] for n in slow),
                   what="both nodes' pulls cancelled once the client left", timeout=40)
