"""The pool of Ollama nodes: background health checks, up/down marking, change notices."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

import aiohttp

from ollamamax_stack.services.inference.admission import NodePolicy, NodeRefused
from ollamamax_stack.services.inference.node_options import BadOption, NodeOptions, parse_entry
from ollamamax_stack.services.routing.failures import describe_error
from ollamamax_stack.services.routing.node import Node, model_key, normalise_url

log = logging.getLogger("ollamamax.inference")


class PoolError(ValueError):
    """A node cannot be added or removed (bad URL, duplicate, unknown id, refused by policy)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # the HTTP answer for a request that asked for this


class NodePool:
    """Ollama nodes, each checked in the background (`/api/version`, then `/api/tags`)."""

    def __init__(self, urls: list[str], *, interval: float = 2.0, timeout: float = 2.0,
                 down_after: int = 2, policy: NodePolicy | None = None,
                 cooldown: float = 10.0) -> None:
        self.nodes: dict[str, Node] = {}
        self.policy = policy or NodePolicy()
        self.interval = interval
        self.timeout = timeout
        self.down_after = down_after
        self.cooldown = cooldown  # seconds a node stays tripped once a front end reports it
        self.generation = 0
        self.rounds = 0  # completed health-check rounds: ready after the first
        self.failovers = 0
        self.closing = False  # set on shutdown: long-polls return at once
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        for entry in urls:
            try:
                url, options = parse_entry(entry)
            except BadOption as exc:
                raise PoolError(str(exc)) from None
            self.add(url, options)

    @property
    def running(self) -> bool:
        """Whether the health checker runs and has looked at every node once."""
        return self._task is not None and not self._task.done() and self.rounds > 0

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client session used for health checks."""
        assert self._session is not None, "pool not started"
        return self._session

    def add(self, url: str, options: NodeOptions | None = None) -> Node:
        """Add a node by URL (checked at once when the pool runs)."""
        try:
            url = normalise_url(url)
        except ValueError as exc:
            raise PoolError(str(exc)) from None
        options = options or NodeOptions()
        node = Node(url=url, slots=options.slots, weight=options.weight, tier=options.tier)
        if node.id in self.nodes:
            raise PoolError(f"node {url} is already in the pool (id {node.id})", 409)
        try:
            self.policy.admit(url, len(self.nodes))
        except NodeRefused as exc:
            raise PoolError(str(exc), exc.status) from None
        self.nodes[node.id] = node
        self._bump()
        if self._session is not None:
            asyncio.get_running_loop().create_task(self.check(node))
        return node

    def remove(self, node_id: str) -> Node:
        """Remove a node by id."""
        try:
            node = self.nodes.pop(node_id)
        except KeyError:
            raise PoolError(f"no node with id {node_id!r}", 404) from None
        self._bump()
        return node

    def healthy(self) -> list[Node]:
        """The nodes that answer now."""
        return [n for n in self.nodes.values() if n.healthy]

    def models(self) -> dict[str, list[Node]]:
        """Every known model and the nodes that list it."""
        found: dict[str, list[Node]] = {}
        for node in self.nodes.values():
            for name in node.models:
                found.setdefault(name, []).append(node)
        return dict(sorted(found.items()))

    def holders(self, model: str) -> list[Node]:
        """The nodes (healthy or not) that list `model`."""
        key = model_key(model)
        return [n for n in self.nodes.values() if key in n.models]

    def _bump(self) -> None:
        self.generation += 1
        with contextlib.suppress(RuntimeError):  # no running loop: nobody can be waiting
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_change(self, after: int, timeout: float) -> int:
        """Wait until the node set or health differs from generation `after` (or timeout)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.generation != after or self.closing),
                    timeout)
        return self.generation

    def _mark(self, node: Node, healthy: bool, error: str | None) -> None:
        if healthy:
            node.failures = 0
        else:
            node.failures += 1
            node.last_error = error
        was = node.healthy
        if healthy:
            node.healthy = True
        elif node.failures >= self.down_after or not node.checked:
            node.healthy = False
        node.checked = True
        if node.healthy != was:
            if node.healthy:
                node.breaker.success()  # back from down: a restarted node starts afresh
            node.last_change = time.time()
            log.info("node %s (%s) is %s%s", node.id, node.url,
                     "up" if node.healthy else "down", "" if healthy else f": {error}")
            self._bump()

    def record_failure(self, node: Node, error: str, refused: bool = False) -> None:
        """A request could not reach the node: one more consecutive failure."""
        node.errors += 1
        self._mark(node, False, error)

    def tripped(self, node: Node) -> None:
        """A node's breaker opened (here, or as a front end reported): publish it."""
        log.warning("node %s (%s) is left alone for %gs after failures in a row: %s", node.id,
                    node.url, max(node.breaker.open_until - time.monotonic(), 0.0),
                    node.last_error)
        self._bump()

    def trip(self, node: Node, reason: str) -> None:
        """A front end's breaker for `node` opened: open it here too, for every front end."""
        node.errors += 1
        node.last_error = reason
        node.breaker.open(time.monotonic() + self.cooldown)
        self.tripped(node)

    async def _get(self, node: Node, path: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self.session.get(node.url + path, timeout=timeout) as resp:
            if resp.status != 200:
                raise RuntimeError(f"GET {path} answered HTTP {resp.status}")
            return await resp.json(content_type=None)

    async def check(self, node: Node) -> None:
        """Check one node: `/api/version` says it is up, `/api/tags` what it serves."""
        try:
            version = await self._get(node, "/api/version")
            tags = await self._get(node, "/api/tags")
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
            reason = describe_error(exc)
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {self.timeout:g}s"
            self._mark(node, False, reason)
            return
        models = {model_key(str(m.get("name") or m.get("model"))): m
                  for m in tags.get("models", []) if isinstance(m, dict)}
        if set(models) != set(node.models):
            node.models = models
            self._bump()
        await self._check_loaded(node)
        node.models = models
        node.version = str(version.get("version")) if isinstance(version, dict) else None
        self._mark(node, True, None)

    async def _check_loaded(self, node: Node) -> None:
        """`/api/ps`: which models the node has loaded now (none known when it fails)."""
        try:
            running = await self._get(node, "/api/ps")
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError):
            running = {}
        entries = running.get("models", []) if isinstance(running, dict) else []
        loaded = {model_key(str(m.get("name") or m.get("model"))): expires_in(m)
                  for m in entries if isinstance(m, dict)}
        if set(loaded) != set(node.loaded):
            node.loaded = loaded
            for model in loaded:
                node.loading.pop(model, None)
            self._bump()
        node.loaded = loaded

    async def _loop(self) -> None:
        while True:
            nodes = list(self.nodes.values())
            await asyncio.gather(*(self.check(n) for n in nodes))
            if self.rounds == 0:
                self.rounds = 1
                self._bump()
            else:
                self.rounds += 1
            await asyncio.sleep(self.interval)

    async def release_waiters(self) -> None:
        """End every long-poll now (the service is draining)."""
        self.closing = True
        await self._notify()

    async def start(self) -> None:
        """Start checking in the background."""
        self._session = aiohttp.ClientSession()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop checking and close the session."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()


def expires_in(entry: dict[str, Any]) -> float:
    """Seconds until a loaded model of `/api/ps` expires (0 when it says no time)."""
    raw = entry.get("expires_at")
    if not isinstance(raw, str):
        return 0.0
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(at.timestamp() - time.time(), 0.0)
