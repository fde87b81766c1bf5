"""A front end's routing table: the inference service's view, and what the front end saw."""

from __future__ import annotations

from typing import Any

from ollamamax_stack.services.routing.router import Router
from ollamamax_stack.services.routing.table import RouteTable


def body(generation: int, **nodes: tuple[bool, list[str]]) -> dict[str, Any]:
    return {"generation": generation, "ready": True,
            "nodes": [{"id": name, "url": f"http://127.0.0.1:{20000 + i}", "healthy": up,
                       "models": models} for i, (name, (up, models)) in enumerate(nodes.items())]}


def test_tables_replace_nodes_and_keep_local_counts() -> None:
    table = RouteTable()
    assert table.apply(body(1, a=(True, ["m"]), b=(True, ["m"])))
    table.nodes["a"].in_flight = 2
    assert not table.apply(body(1, a=(True, ["m"]), b=(True, ["m"])))  # nothing new
    assert table.apply(body(2, a=(True, ["m", "x"])))
    assert set(table.nodes) == {"a"} and table.nodes["a"].in_flight == 2
    assert [n.id for n in Router(table).candidates("x")] == ["a"]


def test_a_refused_connect_makes_a_node_suspect_until_it_expires() -> None:
    table = RouteTable(suspect_for=3600)
    table.apply(body(1, a=(True, ["m"]), b=(True, ["m"])))
    table.record_failure(table.nodes["a"], "cannot connect: connection refused", refused=True)
    assert [n.id for n in Router(table).candidates("m")] == ["b"]
    table.apply(body(2, a=(True, ["m"]), b=(True, ["m"])))  # inference still says a is up
    assert [n.id for n in table.healthy()] == ["b"]
    table.suspect_for = 0
    table.record_failure(table.nodes["a"], "refused", refused=True)
    assert {n.id for n in table.healthy()} == {"a", "b"}  # expired at once


def test_a_failure_that_is_no_refusal_only_counts() -> None:
    table = RouteTable(suspect_for=3600)
    table.apply(body(1, a=(True, ["m"])))
    table.record_failure(table.nodes["a"], "HTTP 500", refused=False)
    assert table.nodes["a"].errors == 1 and table.nodes["a"].healthy
    table.record_failure(table.nodes["a"], "HTTP 502")  # not a refusal unless said
    assert table.nodes["a"].healthy and [n.id for n in table.healthy()] == ["a"]


def test_inference_seeing_a_node_come_back_ends_the_suspicion() -> None:
    table = RouteTable(suspect_for=3600)
    table.apply(body(1, a=(True, ["m"])))
    table.record_failure(table.nodes["a"], "refused", refused=True)
    table.apply(body(2, a=(False, ["m"])))
    assert not table.healthy()
    table.apply(body(3, a=(True, ["m"])))
    assert [n.id for n in table.healthy()] == ["a"]


def test_losing_inference_keeps_the_table_and_says_since_when() -> None:
    table = RouteTable()
    table.apply(body(1, a=(True, ["m"])))
    table.lost("cannot connect")
    since = table.contact.since
    table.lost("cannot connect again")
    assert table.stale and table.contact.since == since and table.nodes
    table.apply(body(1, a=(True, ["m"])))
    assert not table.stale


def test_an_expired_suspicion_leaves_a_node_inference_calls_down_unrouted() -> None:
    table = RouteTable(suspect_for=0)  # the suspicion ends at the next look
    table.apply(body(1, a=(True, ["m"]), b=(True, ["m"])))
    table.record_failure(table.nodes["a"], "refused", refused=True)
    table.apply(body(2, a=(False, ["m"]), b=(True, ["m"])))  # inference: a went down meanwhile
    assert [n.id for n in table.healthy()] == ["b"]
    assert [n.id for n in Router(table).candidates("m")] == ["b"]


def test_a_new_table_waits_for_the_first_one() -> None:
    table = RouteTable()
    assert (table.generation, table.ready, table.failovers, table.received, table.stale) == (
        -1, False, 0, False, False)
    assert table.suspect_for == 5.0 and table.healthy() == []
    assert table.apply({"generation": 0, "nodes": []})  # generation 0 is news, ready by default
    assert table.ready is True and table.contact.received is not None
    table.apply({"generation": 1, "ready": False, "nodes": []})
    assert table.ready is False


def test_nodes_take_url_models_and_inference_health_from_the_table() -> None:
    table = RouteTable(suspect_for=3600)
    table.apply(body(1, a=(True, ["llama3.2"]), b=(False, ["m"])))
    a, b = table.nodes["a"], table.nodes["b"]
    assert a.url == "http://127.0.0.1:20000" and set(a.models) == {"llama3.2:latest"}
    assert a.checked is True and b.checked is True
    assert (a.healthy, a.last_error) == (True, None)
    assert (b.healthy, b.last_error) == (False, "down (inference)")
    table.record_failure(b, "HTTP 500")
    table.record_failure(b, "HTTP 502")
    assert b.errors == 2 and b.last_error == "HTTP 502"
    table.apply(body(2, a=(True, ["llama3.2"]), b=(False, ["m"])))
    assert b.last_error == "HTTP 502"  # the front end's own reason is kept while down
    table.record_failure(a, "refused", refused=True)
    assert a.healthy is False and a.last_error == "refused"
    table.apply(body(3, a=(True, ["llama3.2"]), b=(True, ["m"])))  # b back, never suspect
    assert [n.id for n in table.healthy()] == ["b"] and b.last_error is None


def test_a_node_removed_and_added_again_starts_unsuspected() -> None:
    table = RouteTable(suspect_for=3600)
    table.apply(body(1, a=(True, ["m"])))
    table.record_failure(table.nodes["a"], "refused", refused=True)
    table.apply(body(2))
    table.apply(body(3, a=(True, ["m"])))
    assert [n.id for n in table.healthy()] == ["a"]


def test_answers_and_losses_are_timed() -> None:
    table = RouteTable()
    table.apply(body(1))
    assert table.contact.answered is not None and table.contact.answered > 1_700_000_000
    table.lost("cannot connect")
    assert table.contact.since is not None and table.contact.since > 1_700_000_000
    assert table.contact.error == "cannot connect"
