"""Where a pull goes and how its failures read; the registry's `models` and their env key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.loader import load_registry
from ollamamax_stack.services.inference.pulls import (
    NodeFailure,
    Outcome,
    UnknownNode,
    answer_status,
    failure_message,
    plan_pull,
    resolve,
)
from ollamamax_stack.services.routing.node import Node


def node(port: int, *models: str, healthy: bool = True) -> Node:
    return Node(url=f"http://127.0.0.1:{port}", healthy=healthy,
                models={m: {"name": m} for m in models})


def test_resolve_takes_ids_urls_and_host_port_once_each() -> None:
    a, b = node(1001), node(1002)
    pool = {a.id: a, b.id: b}
    assert resolve(pool, [b.id, "http://127.0.0.1:1001/", "127.0.0.1:1002"]) == [b, a]
    with pytest.raises(UnknownNode, match=r"no node 'x:1' in the pool \(known: n"):
        resolve(pool, ["x:1"])


def test_without_replicas_every_candidate_pulls_even_a_down_one() -> None:
    nodes = [node(1001), node(1002, healthy=False)]
    plan = plan_pull(nodes, "phi3", None)
    assert plan.pull == nodes and plan.present == [] and plan.shortfall is None


def test_replicas_count_the_holders_and_take_the_emptiest_healthy_nodes() -> None:
    holder, full, empty, down = (node(1001, "phi3:latest"), node(1002, "a:1", "b:1"),
                                 node(1003), node(1004, healthy=False))
    plan = plan_pull([holder, full, empty, down], "phi3", 2)
    assert plan.present == [holder] and plan.pull == [empty] and plan.shortfall is None
    assert plan_pull([holder, full], "phi3", 1).pull == []
    short = plan_pull([holder, down], "phi3", 3)
    assert short.pull == []
    assert short.shortfall == (f"3 replicas asked for, but only 1 nodes can hold phi3:latest "
                               f"(down: {down.id} (127.0.0.1:1004))")


def test_failures_name_each_node_and_the_status_is_theirs_when_they_agree() -> None:
    a, b, c = node(1001), node(1002), node(1003)
    missing = [Outcome(a, "success"),
               Outcome(b, "failed", NodeFailure(b, "file does not exist", 500)),
               Outcome(c, "failed", NodeFailure(c, "file does not exist", 500))]
    assert failure_message("pull", "x:latest", missing) == (
        f"pull of 'x:latest' failed on 2 of 3 nodes: node {b.id} (127.0.0.1:1002): file does "
        f"not exist; node {c.id} (127.0.0.1:1003): file does not exist")
    assert answer_status(missing) == 500
    missing[2] = Outcome(c, "failed", NodeFailure(c, "cannot connect"))
    assert answer_status(missing) == 502
    assert failure_message("pull", "x:latest", [Outcome(a, "success")]) is None
    assert failure_message("pull", "x:latest", [], "too few") == "pull of 'x:latest': too few"
    assert answer_status([]) == 503


def registry_file(tmp_path: Path, models: str) -> Path:
    path = tmp_path / "ports.toml"
    path.write_text('[services.inference]\nports = { api = 8080, web = 8081 }\n'
                    'command = "ollamamax serve inference"\n'
                    f'[services.ollama]\nport = 11434\nexternal = true\nmodels = {models}\n')
    return path


def test_the_registry_models_reach_the_inference_service_environment(tmp_path: Path) -> None:
    registry = load_registry(registry_file(tmp_path, '["llama3.2", "qwen2.5:0.5b"]'))
    env = service_environment(registry, registry.services["inference"])
    assert env["OLLAMAMAX_OLLAMA_MODELS"] == "llama3.2,qwen2.5:0.5b"


def test_a_bad_model_name_is_named_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"services\.ollama\.models"):
        load_registry(registry_file(tmp_path, '["two words"]'))
