"""The stand-in Ollama's scheduler tells the truth: slots, its queue, one load, eviction."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.ollama_sched import BUSY, Scheduler, ServerBusy, Settings


def test_slots_hold_the_rest_in_its_queue_and_refuse_past_it() -> None:
    async def run() -> Scheduler:
        sched = Scheduler(Settings(num_parallel=2, max_queue=1))
        release = asyncio.Event()

        async def request() -> None:
            async with sched.slot("m:latest"):
                await release.wait()

        tasks = [asyncio.create_task(request()) for _ in range(3)]
        while sched.counters.held < 2 or sched.counters.queued < 1:
            await asyncio.sleep(0)
        with pytest.raises(ServerBusy, match="server busy"):
            async with sched.slot("m:latest"):
                pass
        release.set()
        await asyncio.gather(*tasks)
        return sched

    stats = asyncio.run(run()).stats()
    assert (stats["most_held"], stats["most_queued"], stats["busy"]) == (2, 1, 1)
    assert stats["requests"] == 4 and "maximum pending requests exceeded" in BUSY


def test_one_load_for_many_waiters_and_the_least_recently_used_is_evicted() -> None:
    async def run() -> Scheduler:
        sched = Scheduler(Settings(max_loaded=2, load_delay=0.01), warm=["a:latest"])
        assert await sched.load("a:latest") < 0.01  # warm: no load
        await asyncio.gather(*(sched.load("b:latest") for _ in range(5)))
        await sched.load("c:latest")  # a is the least recently used: evicted
        return sched

    sched = asyncio.run(run())
    assert sched.stats()["loads"] == {"b:latest": 1, "c:latest": 1}
    assert sorted(sched.running()) == ["b:latest", "c:latest"]
    assert sched.counters.evictions == 1


def test_a_busy_model_is_unloaded_only_once_its_requests_are_done() -> None:
    """Ollama (server/sched.go) evicts a runner only when no request uses it: on a node that
    holds one model, a request for another waits for the loaded one's requests, and those
    that came after it wait behind it; the node never serves two models at once."""
    async def run() -> tuple[Scheduler, list[str]]:
        sched = Scheduler(Settings(num_parallel=2, max_loaded=1, load_delay=0.01),
                          warm=["a:latest"])
        release = asyncio.Event()
        order: list[str] = []

        async def request(model: str, tag: str, hold: bool) -> None:
            async with sched.slot(model):
                await sched.load(model)
                order.append(f"{tag} starts with {sorted(sched.running())}")
                if hold:
                    await release.wait()

        first = [asyncio.create_task(request("a:latest", f"a{i}", True)) for i in range(2)]
        while sched.counters.held < 2:
            await asyncio.sleep(0)
        other = asyncio.create_task(request("b:latest", "b", False))
        await asyncio.sleep(0.05)
        later = asyncio.create_task(request("a:latest", "a-late", False))
        await asyncio.sleep(0.05)
        assert sched.counters.held == 2 and sched.counters.queued == 2, order
        release.set()
        await asyncio.gather(*first, other, later)
        return sched, order

    sched, order = asyncio.run(run())
    assert order == ["a0 starts with ['a:latest']", "a1 starts with ['a:latest']",
                     "b starts with ['b:latest']", "a-late starts with ['a:latest']"]
    stats = sched.stats()
    assert stats["most_held"] == 2 and stats["evictions"] == 2
    assert stats["loads"] == {"b:latest": 1, "a:latest": 1}
