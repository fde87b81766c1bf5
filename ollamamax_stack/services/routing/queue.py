"""Requests waiting for a slot: first come first served, fair across API keys, bounded.

A waiter is ranked by (its place among its key's waiters, arrival): a key with 100 waiting
requests takes every other turn with a key that has one, not the next 100. Slots freed in
this process wake the queue at once; slots freed by another process of the stack are found
by trying again every `POLL` seconds (a lock file cannot be waited on without a thread).
Past `max_size` waiters, or `timeout` seconds of waiting, a request gets a 503 with
`Retry-After`; a client that hung up leaves the queue at the next turn.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ollamamax_stack.services.common.caller import Caller
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.routing.slots import Lease

POLL = 0.02  # seconds between tries for slots another process may have freed
TIMEOUT = 60.0  # OLLAMAMAX_QUEUE_TIMEOUT
MAX_SIZE = 512  # OLLAMAMAX_MAX_QUEUE (Ollama's own OLLAMA_MAX_QUEUE default)
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, math.inf)
Pick = Callable[[], Lease | None]  # a free slot of a candidate node now, or None


class QueueFull(ApiError):
    """A 503 that tells the client when to try again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(503, message, "server_busy", retry_after=max(1, math.ceil(retry_after)))


@dataclass(eq=False)  # compared by identity: leaving the queue is a C-level list.remove
class Waiter:
    """One request in the queue, ordered by `place`: its fair rank, then its arrival."""

    place: tuple[int, int]
    key: str
    what: str  # the model: waiters of a model found full wait for the next turn
    pick: Pick
    gone: Callable[[], bool]
    future: asyncio.Future[Lease]


@dataclass
class WaitStats:
    """What the metrics show: depth now, waits by bucket, refusals."""

    waits: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    waited_sum: float = 0.0
    served: int = 0
    full: int = 0
    timeouts: int = 0
    left: int = 0


class WaitQueue:
    """The queue of one process in front of the stack's slots."""

    def __init__(self, max_size: int = MAX_SIZE, timeout: float = TIMEOUT,
                 poll: float = POLL) -> None:
        self.max_size = max_size
        self.timeout = timeout
        self.poll = poll
        self.stats = WaitStats()
        self._waiters: list[Waiter] = []
        self._last_rank: dict[str, int] = {}
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Requests waiting now."""
        return len(self._waiters)

    def kick(self) -> None:
        """A slot was freed in this process: hand it on now (no task switch in between)."""
        if self._waiters:
            self._turn(once=True)  # one slot was freed: the first waiter that can use it

    def _retry_after(self) -> float:
        served = self.stats.served
        return self.stats.waited_sum / served if served else 1.0

    async def lease(self, pick: Pick, caller: Caller, what: str) -> Lease:
        """A slot from `pick`, at once or after waiting in turn; QueueFull past the limits."""
        if not self._waiters:
            lease = pick()
            if lease is not None:
                return lease
        if len(self._waiters) >= self.max_size:
            self.stats.full += 1
            raise QueueFull(f"every node holding {what} is busy and {self.max_size} requests "
                            "already wait (OLLAMAMAX_MAX_QUEUE); try again later",
                            self._retry_after())
        rank = self._waiters[0].place[0] if self._waiters else 0
        rank = max(rank, self._last_rank.get(caller.key, -1) + 1)
        self._last_rank[caller.key] = rank
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Lease] = loop.create_future()
        waiter = Waiter((rank, next(self._seq)), caller.key, what, pick, caller.gone, future)
        bisect.insort(self._waiters, waiter, key=_place)
        started = time.monotonic()
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._run())
        # A timer, not wait_for: no task and no shield per waiting request.
        timer = loop.call_later(self.timeout, _expire, future)
        try:
            lease = await future
        except BaseException as exc:
            self._drop(waiter)
            if isinstance(exc, _Expired):
                self.stats.timeouts += 1
                raise QueueFull(f"every node holding {what} stayed busy for "
                                f"{self.timeout:g}s (OLLAMAMAX_QUEUE_TIMEOUT); try again later",
                                self._retry_after()) from None
            raise
        finally:
            timer.cancel()
        self._remove(waiter)
        waited = time.monotonic() - started
        self.stats.served += 1
        self.stats.waited_sum += waited
        self.stats.waits[bisect.bisect_left(BUCKETS, waited)] += 1
        return lease

    def _remove(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        if not self._waiters:
            self._last_rank.clear()

    def _drop(self, waiter: Waiter) -> None:
        """A waiter that will not take its slot: out of the queue, a slot handed over freed."""
        self._remove(waiter)
        future = waiter.future
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            future.result().release()

    def _turn(self, once: bool = False) -> None:
        full: set[str] = set()  # one try per model and turn: 500 waiters cost one look each
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            if waiter.gone():
                self.stats.left += 1
                waiter.future.set_exception(ApiError(499, "the client left the queue",
                                                     "client_gone"))
                continue
            if waiter.what in full:
                continue
            try:
                lease = waiter.pick()
            except ApiError as exc:  # nothing can serve it any more (removed, tripped)
                waiter.future.set_exception(exc)
                continue
            if lease is None:
                full.add(waiter.what)
            else:
                waiter.future.set_result(lease)
                if once:
                    return

    async def _run(self) -> None:
        # Slots freed here are handed on by kick(); those another process frees are found by
        # looking again every `poll` seconds.
        while self._waiters:
            await asyncio.sleep(self.poll)
            self._turn()


def _place(waiter: Waiter) -> tuple[int, int]:
    return waiter.place


class _Expired(Exception):
    """A waiter's time in the queue ran out."""


def _expire(future: asyncio.Future[Lease]) -> None:
    if not future.done():
        future.set_exception(_Expired())
