"""Open a request on the best node for a model, failing over to the next before the first byte."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ollamamax_stack.services.common.caller import CALLER
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.routing.node import Node, model_key
from ollamamax_stack.services.routing.policy import SchedulingPolicy
from ollamamax_stack.services.routing.queue import WaitQueue
from ollamamax_stack.services.routing.router import Router
from ollamamax_stack.services.routing.scheduler import Scheduler
from ollamamax_stack.services.routing.slots import Lease, SlotLocks
from ollamamax_stack.services.routing.source import NodeSource
from ollamamax_stack.services.routing.wire import ConnectError, Response, WireClient, WireError

log = logging.getLogger("ollamamax.routing")
ABANDONED_GRACE = 0.1  # seconds a cut-off request keeps its slot while the node cancels it


@dataclass(frozen=True)
class Skip:
    """Why a node did not take a request; `refused` when the connect itself failed."""

    reason: str
    refused: bool = False


class Dispatcher:
    """A keep-alive client of the nodes that tries the router's candidates in turn.

    With `OLLAMAMAX_ROUTING=slots` (the default) each request first takes a slot of its node
    (slots.py: stack-wide), waits in the queue (queue.py) while every candidate is full, and
    its outcome feeds the node's breaker; `least-in-flight` is the router before that.
    """

    def __init__(self, source: NodeSource, *, connect_timeout: float = 3.0,
                 read_timeout: float = 300.0, policy: SchedulingPolicy | None = None) -> None:
        self.source = source
        self.policy = policy or SchedulingPolicy()
        self.router: Router | Scheduler = (Scheduler(source, self.policy.cold_cost)
                                           if self.policy.scheduled else Router(source))
        self.queue = WaitQueue(self.policy.max_queue, self.policy.queue_timeout)
        self.slots = SlotLocks(self.policy.slots_dir, self.queue.kick)
        # No total timeout: a node may spend minutes loading a model before its first byte;
        # the read timeout is per wait for the next bytes.
        self.client = WireClient(connect_timeout, read_timeout)

    async def start(self) -> None:
        """Nothing to open: connections are made on first use and kept alive."""

    async def stop(self) -> None:
        """Close the idle connections and the slot files."""
        self.client.close()
        self.slots.close()

    async def _try(self, node: Node, path: str, body: bytes) -> Response | Skip:
        try:
            resp = await self.client.post(node.url, path, body)
        except ConnectError as exc:
            return Skip(exc.reason, refused=True)
        except TimeoutError:
            return Skip("timed out before answering")
        except WireError as exc:
            return Skip(f"disconnected before answering ({exc})")
        if resp.status >= 500:
            try:
                detail = (await resp.text())[:200].strip()
            except (WireError, TimeoutError):
                detail = ""
            resp.close()
            return Skip(f"HTTP {resp.status} {detail}".strip())
        return resp

    def failed(self, node: Node, reason: str, refused: bool = False) -> None:
        """A request to `node` failed (5xx, timeout, refused, broken stream): count it, and
        trip the node's breaker after `trip_after` in a row."""
        self.source.record_failure(node, reason, refused)
        if self.policy.scheduled and node.breaker.failure(
                time.monotonic(), self.policy.trip_after, self.policy.cooldown):
            log.warning("node %s (%s) tripped after %d failures in a row (%s): left alone "
                        "for %gs", node.id, node.url, node.breaker.failures, reason,
                        self.policy.cooldown)
            self.source.tripped(node)

    async def _admit(self, model: str, skipped: set[str], tried: list[str]) -> Lease:
        """A slot of the best candidate not yet tried, at once or after waiting in the queue."""
        take = self.slots.take
        scheduler = self.router
        assert isinstance(scheduler, Scheduler)

        def pick() -> Lease | None:
            nodes = scheduler.candidates(model, skipped)
            if not nodes:
                raise ApiError(503, f"no node could serve model {model!r}; tried: "
                                    f"{'; '.join(tried)}", "no_healthy_node")
            for node in nodes:
                lease = take(node)
                if lease is not None:
                    return lease
            return None

        return await self.queue.lease(pick, CALLER.get(), f"model {model!r}")

    @contextlib.asynccontextmanager
    async def open(self, model: str, path: str,
                   body: bytes) -> AsyncIterator[tuple[Node, Response]]:
        """The first candidate node that answers, and its response (counted in flight)."""
        tried: list[str] = []
        skipped: set[str] = set()
        scheduled = self.policy.scheduled
        order = None if scheduled else iter(self.router.candidates(model))
        key = model_key(model)
        while True:
            lease: Lease | None = None
            if order is None:
                lease = await self._admit(model, skipped, tried)
                node = lease.node
            else:
                found = next(order, None)
                if found is None:
                    break
                node = found
            node.in_flight += 1
            node.requests += 1
            errors = node.errors
            try:
                if scheduled:
                    now = time.monotonic()
                    node.breaker.sent(now)
                    if key not in node.loaded:
                        node.loading.setdefault(key, now)
                outcome = await self._try(node, path, body)
                if isinstance(outcome, Skip):
                    node.loading.pop(key, None)  # it did not take the request: no load there
                    tried.append(f"{node.id} {node.url}: {outcome.reason}")
                    skipped.add(node.id)
                    self.failed(node, outcome.reason, outcome.refused)
                    self.source.failovers += 1
                    log.warning("node %s (%s) skipped for %s: %s", node.id, node.url, path,
                                outcome.reason)
                    continue
                if scheduled and outcome.status < 400 and key in node.loading:
                    del node.loading[key]  # it answered: loaded (seen here, before /api/ps)
                    node.loaded[key] = time.monotonic()
                try:
                    yield node, outcome
                finally:
                    if lease is not None and not outcome.done:
                        # Cut off (the client left): the node needs a moment to see the cancel;
                        # a request sent at once would find the slot still busy there.
                        asyncio.get_running_loop().call_later(ABANDONED_GRACE, lease.release)
                        lease = None
                    outcome.release()
                    if scheduled and node.errors == errors:
                        node.breaker.success()  # a 4xx is the request's fault, not the node's
                return
            finally:
                node.in_flight -= 1
                if lease is not None:
                    lease.release()
        raise ApiError(503, f"no node could serve model {model!r}; tried: {'; '.join(tried)}",
                       "no_healthy_node")
