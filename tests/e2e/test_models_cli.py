"""`ollamamax models ls|pull|rm` as a user runs them, against the real inference service over
three stand-in nodes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import ollama
import pytest

from tests.integration.services_procs import (
    ROOT,
    FakeNode,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)
from tests.portbase import free_port

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("models-cli")
    nodes = fake_nodes(tmp, [("a", "llama3.2,phi3", []), ("b", "llama3.2", []),
                             ("c", "qwen2.5:0.5b", [])])
    with running_stack(tmp, nodes, ["inference"]) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def nodes_of(stack: Stack) -> list[FakeNode]:
    return stack.nodes  # type: ignore[attr-defined, no-any-return]


def models(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(stack.argv("models", *args), capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


def ids(stack: Stack) -> dict[str, str]:
    _, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    by_url = {n["url"]: n["id"] for n in body["nodes"]}
    return {n.name: by_url[n.url] for n in nodes_of(stack)}


def rows(output: str) -> set[tuple[str, ...]]:
    return {tuple(line.split(None, 3)) for line in output.splitlines()[1:]
            if line and not line.startswith("node ")}


def test_ls_shows_which_node_holds_which_model_and_what_is_loaded(stack: Stack) -> None:
    a, b, c = nodes_of(stack)
    known = ids(stack)
    # Load phi3 on a (the only node that has it): `ls` says it is loaded there, nowhere else.
    ollama.Client(host=stack.url("inference")).chat(
        model="phi3", messages=[{"role": "user", "content": "hi"}])
    done = models(stack, "ls")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["MODEL", "NODE", "URL", "LOADED"]
    found = {(r[0], r[1], r[2], r[3].startswith("loaded")) for r in rows(done.stdout)}
    assert found == {("llama3.2:latest", known["a"], a.url, False),
                     ("phi3:latest", known["a"], a.url, True),
                     ("llama3.2:latest", known["b"], b.url, False),
                     ("qwen2.5:0.5b", known["c"], c.url, False)}


def test_pull_prints_each_node_and_then_ls_shows_it_everywhere(stack: Stack) -> None:
    known = ids(stack)
    done = models(stack, "pull", "mistral")
    assert done.returncode == 0, done.stderr
    for name, node_id in known.items():
        lines = [line for line in done.stdout.splitlines() if line.startswith(node_id)]
        assert "pulling manifest" in lines[0], name
        assert any("(1.0 GB)" in line for line in lines), lines
        assert lines[-1].endswith(" success"), lines
    assert done.stdout.splitlines()[-1] == "mistral: on 3 nodes"
    held = {(r[0], r[1]) for r in rows(models(stack, "ls").stdout)}
    assert {("mistral:latest", i) for i in known.values()} <= held


def test_pull_onto_one_node_and_by_replicas(stack: Stack) -> None:
    a, b, c = nodes_of(stack)
    known = ids(stack)
    done = models(stack, "pull", "tinyllama", "--node", c.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "tinyllama: on 1 node"
    done = models(stack, "pull", "tinyllama", "--replicas", "2")
    assert done.returncode == 0, done.stderr
    assert f"{known['c']} ({c.url}) already present" in done.stdout
    held = [r[1] for r in rows(models(stack, "ls").stdout) if r[0] == "tinyllama:latest"]
    assert len(held) == 2 and known["c"] in held


def test_a_failed_pull_names_every_node_and_exits_1(stack: Stack) -> None:
    done = models(stack, "pull", "no-such-model")
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("ollamamax: error: pull of "
                                                   "'no-such-model:latest' failed on 3 of 3")
    for node_id in ids(stack).values():
        assert f"{node_id} (" in done.stdout and f"node {node_id} (" in error[0]


def test_rm_removes_it_from_every_node(stack: Stack) -> None:
    known = ids(stack)
    assert models(stack, "pull", "gemma2:2b").returncode == 0
    done = models(stack, "rm", "gemma2:2b")
    assert done.returncode == 0, done.stderr
    for node_id in known.values():
        assert f"{node_id} (" in done.stdout
    assert done.stdout.count(" deleted") == 3
    assert not [r for r in rows(models(stack, "ls").stdout) if r[0] == "gemma2:2b"]
    again = models(stack, "rm", "gemma2:2b")
    assert again.returncode == 1
    assert again.stdout.count(" not there") == 3
    assert again.stderr.strip() == "ollamamax: error: model 'gemma2:2b' not found"


def test_a_down_node_is_named(stack: Stack) -> None:
    c = nodes_of(stack)[2]
    known = ids(stack)
    assert c.proc is not None
    c.proc.stop()
    try:
        wait_until(lambda: f"node {known['c']} ({c.url}) is down" in models(stack, "ls").stdout,
                   what="ls naming the down node")
        done = models(stack, "rm", "tinyllama")
        assert done.returncode == 1
        assert f"node {known['c']} (" in done.stderr and "is down" in done.stderr
    finally:
        c.start()


def test_no_inference_service_is_one_line(stack: Stack) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(stack.argv("models", "ls"), capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False,
                          env={**os.environ, "OLLAMAMAX_INFERENCE_URL": nowhere})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [f"ollamamax: error: the inference service at {nowhere} is not answering "
                     "(connection refused); is the stack up (`ollamamax up`)?"]
