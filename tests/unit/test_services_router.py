"""Routing over the node pool: model holders, health, least in flight, 404 versus 503."""

from __future__ import annotations

import pytest

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.inference.pool import NodePool, PoolError
from ollamamax_stack.services.routing.node import model_key
from ollamamax_stack.services.routing.router import Router


def pool_of(**nodes: list[str]) -> tuple[NodePool, dict[str, str]]:
    pool = NodePool([])
    ids = {}
    for port, (name, models) in enumerate(nodes.items(), start=20001):
        node = pool.add(f"http://127.0.0.1:{port}/")
        node.models = {model_key(m): {} for m in models}
        node.healthy = node.checked = True
        ids[name] = node.id
    return pool, ids


def test_model_names_default_to_latest() -> None:
    assert model_key("llama3") == "llama3:latest"
    assert model_key("library/qwen:0.5b") == "library/qwen:0.5b"


def test_only_healthy_holders_least_in_flight_first() -> None:
    pool, ids = pool_of(a=["llama3"], b=["llama3"], c=["phi3"])
    router = Router(pool)
    assert {n.id for n in router.candidates("llama3:latest")} == {ids["a"], ids["b"]}
    pool.nodes[ids["a"]].in_flight = 3
    assert router.candidates("llama3")[0].id == ids["b"]
    pool.nodes[ids["b"]].healthy = False
    assert [n.id for n in router.candidates("llama3")] == [ids["a"]]


def test_equal_load_takes_turns() -> None:
    pool, ids = pool_of(a=["m"], b=["m"])
    router = Router(pool)
    firsts = {router.candidates("m")[0].id for _ in range(4)}
    assert firsts == {ids["a"], ids["b"]}


def test_unknown_model_404_down_holder_503() -> None:
    pool, ids = pool_of(a=["m"], b=["x"])
    router = Router(pool)
    with pytest.raises(ApiError) as unknown:
        router.candidates("nope")
    assert unknown.value.status == 404 and "nope" in unknown.value.message
    pool.nodes[ids["a"]].healthy = False
    pool.nodes[ids["a"]].last_error = "cannot connect: connection refused"
    with pytest.raises(ApiError) as down:
        router.candidates("m")
    assert down.value.status == 503 and "connection refused" in down.value.message
    with pytest.raises(ApiError) as empty:
        Router(NodePool([])).candidates("m")
    assert empty.value.status == 503


def test_pool_refuses_bad_and_duplicate_urls() -> None:
    pool = NodePool(["http://127.0.0.1:1"])
    with pytest.raises(PoolError, match="already"):
        pool.add("http://127.0.0.1:1/")
    with pytest.raises(PoolError, match="not an http"):
        pool.add("127.0.0.1:2")
    with pytest.raises(PoolError, match="no node"):
        pool.remove("n000")
