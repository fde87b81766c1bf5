"""The scheduler's parts in memory: breaker, slot locks, the fair queue, the order of nodes,
node options (issue 19)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from ollamamax_stack.services.common.caller import Caller
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.inference.node_options import BadOption, NodeOptions, parse_entry
from ollamamax_stack.services.routing.breaker import Breaker, BreakerState
from ollamamax_stack.services.routing.node import Node
from ollamamax_stack.services.routing.queue import QueueFull, WaitQueue
from ollamamax_stack.services.routing.scheduler import Scheduler
from ollamamax_stack.services.routing.slots import Lease, SlotLocks
from ollamamax_stack.services.routing.table import RouteTable


# --- breaker -----------------------------------------------------------------------------
def test_breaker_opens_after_n_in_a_row_then_lets_one_trial_through() -> None:
    breaker = Breaker()
    assert not any(breaker.failure(0.0, trip_after=3, cooldown=10) for _ in range(2))
    breaker.success()  # a success in between starts the count again
    assert [breaker.failure(1.0, 3, 10) for _ in range(3)] == [False, False, True]
    assert breaker.state(5.0) is BreakerState.OPEN and not breaker.allows(5.0)
    assert breaker.state(11.0) is BreakerState.HALF_OPEN and breaker.allows(11.0)
    breaker.sent(11.0)
    assert not breaker.allows(11.5)  # one trial at a time
    assert breaker.failure(12.0, 3, 10)  # the trial failed: open again at once
    assert breaker.state(21.0) is BreakerState.OPEN
    breaker.sent(23.0)
    breaker.success()
    assert breaker.state(23.0) is BreakerState.CLOSED and breaker.failures == 0


# --- slots -------------------------------------------------------------------------------
def test_slots_exclude_across_lockers_and_free_on_release(tmp_path: Path) -> None:
    node = Node(url="http://127.0.0.1:1", slots=2)
    one, two = SlotLocks(tmp_path), SlotLocks(tmp_path)  # two processes, as far as flock goes
    leases = [one.take(node), two.take(node)]
    assert all(isinstance(lease, Lease) for lease in leases)
    assert one.take(node) is None and two.take(node) is None
    assert leases[0] is not None
    leases[0].release()
    leases[0].release()  # once only
    assert two.take(node) is not None and one.take(node) is None
    one.close()
    two.close()


def test_a_killed_holder_frees_its_slots(tmp_path: Path) -> None:
    node = Node(url="http://127.0.0.1:1", slots=1)
    folder = tmp_path / node.id
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(folder / '0')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)\n"],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        slots = SlotLocks(tmp_path)
        assert slots.take(node) is None
        holder.kill()
        holder.wait(5)
        assert slots.take(node) is not None
        slots.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)


# --- queue -------------------------------------------------------------------------------
class OneSlot:
    """A node with `free` slots, handed out by a queue's pick."""

    def __init__(self, free: int) -> None:
        self.node = Node(url="http://127.0.0.1:1", slots=max(free, 1))
        self.locks = SlotLocks(None)
        self.free = free

    def pick(self) -> Lease | None:
        if self.free <= 0:
            return None
        self.free -= 1
        return self.locks.take(self.node)


def test_the_queue_serves_keys_in_turn_and_refuses_past_its_size() -> None:
    async def run() -> tuple[list[str], str]:
        slot = OneSlot(0)
        queue = WaitQueue(max_size=5, timeout=10, poll=0.001)
        order: list[str] = []

        async def ask(key: str) -> None:
            lease = await queue.lease(slot.pick, Caller(key), "model 'm'")
            order.append(key)
            lease.release()

        tasks = [asyncio.create_task(ask(k)) for k in ("a", "a", "a", "a", "b")]
        while queue.depth < 5:
            await asyncio.sleep(0)
        with pytest.raises(QueueFull) as full:
            await queue.lease(slot.pick, Caller("c"), "model 'm'")
        for served in range(1, 6):
            slot.free += 1
            queue.kick()
            while len(order) < served:
                await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
        assert full.value.retry_after is not None and full.value.retry_after >= 1
        return order, full.value.message

    order, message = asyncio.run(run())
    assert order == ["a", "b", "a", "a", "a"]  # b's one request does not wait behind a's four
    assert "OLLAMAMAX_MAX_QUEUE" in message


def test_the_queue_times_out_and_a_caller_that_left_leaves_it() -> None:
    async def run() -> None:
        slot = OneSlot(0)
        queue = WaitQueue(max_size=5, timeout=0.05, poll=0.001)
        with pytest.raises(QueueFull) as late:
            await queue.lease(slot.pick, Caller("a"), "model 'm'")
        assert "OLLAMAMAX_QUEUE_TIMEOUT" in late.value.message and late.value.status == 503
        queue.timeout = 10
        left = {"gone": False}
        waiting = asyncio.create_task(queue.lease(slot.pick, Caller("a", lambda: left["gone"]),
                                                  "model 'm'"))
        while queue.depth < 1:
            await asyncio.sleep(0)
        left["gone"] = True
        with pytest.raises(ApiError) as gone:
            await waiting
        assert gone.value.code == "client_gone" and queue.depth == 0
        assert queue.stats.timeouts == 1 and queue.stats.left == 1

    asyncio.run(run())


# --- order of nodes ----------------------------------------------------------------------
def table(*entries: dict[str, object]) -> RouteTable:
    routes = RouteTable()
    routes.apply({"generation": 1, "nodes": [
        {"id": f"n{i}", "url": f"http://127.0.0.1:{i + 1}", "healthy": True,
         "models": ["m"], **entry} for i, entry in enumerate(entries)]})
    return routes


def test_warm_first_then_loading_and_cold_nodes_wait_for_a_load() -> None:
    routes = table({}, {"loaded": ["m"]}, {})
    scheduler = Scheduler(routes, cold_cost=10)
    assert [n.id for n in scheduler.candidates("m")][0] == "n1"
    routes.nodes["n1"].loaded.clear()
    routes.nodes["n2"].loading["m:latest"] = 1e12  # sent cold just now (monotonic far ahead)
    assert [n.id for n in scheduler.candidates("m")] == ["n2"]  # not a second cold load
    routes.nodes["n2"].loading["m:latest"] = -1e12  # loading longer than a cold load costs
    assert sorted(n.id for n in scheduler.candidates("m")) == ["n0", "n1", "n2"]


def test_a_full_warm_node_is_waited_for_rather_than_a_load_elsewhere() -> None:
    """A cold node would load the model and evict its own (bench/scheduling.py: 34 cold
    loads where a round-robin had 9): while the model is warm on a node of its tier, the
    cold ones are no candidates, however full the warm one is."""
    routes = table({}, {"loaded": ["m"]}, {"tier": 1})
    scheduler = Scheduler(routes, cold_cost=10)
    routes.nodes["n1"].in_flight = routes.nodes["n1"].slots
    assert [n.id for n in scheduler.candidates("m")] == ["n1"]
    routes.nodes["n1"].loaded.clear()  # warm nowhere: any node may load it, tier first
    assert [n.id for n in scheduler.candidates("m")][2] == "n2"


def test_a_higher_tier_only_behind_the_lower_and_weight_scales_the_share() -> None:
    routes = table({"tier": 1, "loaded": ["m"]}, {"slots": 4}, {"slots": 4, "weight": 2})
    scheduler = Scheduler(routes, cold_cost=10)
    assert [n.id for n in scheduler.candidates("m")][2] == "n0"  # warm, but tier 1
    routes.nodes["n1"].in_flight = routes.nodes["n2"].in_flight = 2
    assert [n.id for n in scheduler.candidates("m")][:2] == ["n2", "n1"]  # 2/(4*2) < 2/4


def test_a_tripped_node_is_left_out_and_all_tripped_is_a_503_with_retry_after() -> None:
    routes = table({}, {"open_for": 30})
    scheduler = Scheduler(routes, cold_cost=10)
    assert [n.id for n in scheduler.candidates("m")] == ["n0"]
    routes.nodes["n0"].breaker.open(1e12)
    with pytest.raises(ApiError) as tripped:
        scheduler.candidates("m")
    assert tripped.value.status == 503 and tripped.value.code == "nodes_tripped"
    assert tripped.value.retry_after is not None and tripped.value.retry_after >= 1


# --- node options ------------------------------------------------------------------------
def test_node_entries_carry_slots_weight_and_tier() -> None:
    assert parse_entry("http://gpu:11434") == ("http://gpu:11434", NodeOptions())
    assert parse_entry(" http://gpu:11434;slots=2; weight=1.5;tier=1") == (
        "http://gpu:11434", NodeOptions(slots=2, weight=1.5, tier=1))
    for bad, says in (("http://g:1;slots=0", "slots must be"), ("http://g:1;gpus=2", "'gpus'"),
                      ("http://g:1;weight=nan", "weight"), ("http://g:1;slots", "name=value")):
        with pytest.raises(BadOption, match=says):
            parse_entry(bad)
