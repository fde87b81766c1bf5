"""How the gateway and the hub reach models: straight to the node, routed by the inference
service's table; and the inference service itself for the control plane (tags, the table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.errors import ApiError, names_internals
from ollamamax_stack.services.common.health import Readiness, nodes_down
from ollamamax_stack.services.common.textsafe import hide_addresses
from ollamamax_stack.services.routing.dispatch import Dispatcher
from ollamamax_stack.services.routing.failures import describe_error
from ollamamax_stack.services.routing.follower import WAIT, TableFollower
from ollamamax_stack.services.routing.node import Node
from ollamamax_stack.services.routing.policy import SchedulingPolicy
from ollamamax_stack.services.routing.table import SUSPECT_FOR, RouteTable
from ollamamax_stack.services.routing.wire import Response, WireError

log = logging.getLogger("ollamamax.routing")
NODE_HEADER = "X-Ollamamax-Node"  # set by the inference proxy: which node answered
# What a broken connection to a node looks like once its answer has begun.
BROKEN = (WireError, TimeoutError)
END_WAIT = 1.0  # seconds to wait for the end of a stream after its last object


class UpstreamError(ApiError):
    """A node or the inference service refused, failed, or said no (status and message kept)."""


def _broke(dispatcher: Dispatcher, node: Node, exc: BaseException,
           when: str) -> UpstreamError:
    message = f"node {node.id} ({node.url}) {when}: {exc or type(exc).__name__}"
    dispatcher.failed(node, message)  # a broken answer counts toward the node's breaker
    log.warning(message)  # the operator sees the node's address; callers may not
    return UpstreamError(502, message, "upstream_error")


def _public(exc: ApiError, hide: bool) -> ApiError:
    """`exc` as a caller may see it: node addresses hidden when callers are anonymous."""
    if hide and names_internals(exc.status, exc.code):
        exc.message = hide_addresses(exc.message)
    return exc


class Answers:
    """The objects of one NDJSON answer, and the node that produced them."""

    def __init__(self, resp: Response, node: Node, dispatcher: Dispatcher,
                 hide: bool = False) -> None:
        self._resp = resp
        self._node = node
        self._dispatcher = dispatcher
        self.node: str | None = node.id
        # With auth off every caller is anonymous: node addresses stay in the logs.
        self._hide = hide

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        loads = orjson.loads
        try:
            async for line in self._resp.lines():
                try:
                    item = loads(line)
                except orjson.JSONDecodeError:
                    if not line.strip():
                        continue
                    raise _public(UpstreamError(502, f"node {self.node} sent a broken line: "
                                                     f"{line[:80]!r}", "upstream_error"),
                                  self._hide) from None
                if type(item) is dict:
                    if "error" in item:
                        raise _public(UpstreamError(502, str(item["error"]), "upstream_error"),
                                      self._hide)
                    if item.get("done"):
                        # The end of the body follows the last object at once: wait for it,
                        # so the connection is kept for the next request (callers stop here).
                        await self._resp.drain(END_WAIT)
                    yield item
        except BROKEN as exc:
            raise _public(_broke(self._dispatcher, self._node, exc, "failed mid-stream"),
                          self._hide) from None


async def _refusal(node: Node, resp: Response) -> UpstreamError:
    """A node's 4xx as an error with its own message (404: the model is not there)."""
    try:
        detail = orjson.loads(await resp.read())
        message = detail.get("error") if isinstance(detail, dict) else None
    except (orjson.JSONDecodeError, WireError, TimeoutError):
        message = None
    status = resp.status
    return UpstreamError(status, str(message or f"node {node.id} answered HTTP {status}"),
                         "model_not_found" if status == 404 else None)


class InferenceClient:
    """Model calls straight to the nodes; the inference service for its table and tags."""

    def __init__(self, base_url: str, auth: Authenticator, *, connect_timeout: float = 3.0,
                 read_timeout: float = 300.0, suspect_for: float = SUSPECT_FOR,
                 wait: float = WAIT, policy: SchedulingPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.table = RouteTable(suspect_for, on_trip=self._report_trip)
        self.dispatcher = Dispatcher(self.table, connect_timeout=connect_timeout,
                                     read_timeout=read_timeout, policy=policy)
        self.follower = TableFollower(self.table, self.get, wait)
        self._session: aiohttp.ClientSession | None = None
        self._reports: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the sessions and start following the routing table."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=3))
        await self.dispatcher.start()
        await self.follower.start()

    async def stop(self) -> None:
        """Stop following and close the sessions."""
        await self.follower.stop()
        await self.dispatcher.stop()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session to the inference service."""
        assert self._session is not None, "client not started"
        return self._session

    async def get(self, path: str, timeout: float | None = 10.0) -> Any:
        """GET a JSON document from the inference service."""
        url = self.base_url + path
        try:
            async with self.session.get(url, headers=self.auth.upstream_headers(),
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else describe_error(exc)
            raise UpstreamError(503, f"the inference service at {self.base_url} is not "
                                     f"answering: {reason}", "service_unavailable") from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if resp.status >= 400:
            message = body.get("error") if isinstance(body, dict) else None
            raise UpstreamError(resp.status, str(message or f"inference answered HTTP "
                                                            f"{resp.status}"))
        if body is None:
            raise UpstreamError(502, f"the inference service sent a broken answer to {path}")
        return body

    def _report_trip(self, node: Node) -> None:
        """Tell the inference service a node tripped here; its table takes it to the rest."""
        if self._session is None:
            return
        task = asyncio.get_running_loop().create_task(self._post_trip(node))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _post_trip(self, node: Node) -> None:
        url = f"{self.base_url}/api/v1/nodes/{node.id}/trip"
        try:
            async with self.session.post(url, json={"reason": node.last_error or "failures"},
                                         headers=self.auth.upstream_headers(),
                                         timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status >= 400:
                    log.warning("inference refused the trip of node %s: HTTP %s", node.id,
                                resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not tell inference that node %s tripped: %s", node.id,
                        describe_error(exc))

    def _ready_to_route(self) -> None:
        if not self.table.received:
            raise UpstreamError(503, f"no routing table yet: the inference service at "
                                     f"{self.base_url} has not answered "
                                     f"({self.table.contact.error or 'starting'})",
                                "service_unavailable")

    async def call(self, path: str, body: dict[str, Any]) -> Any:
        """POST to the best node for the body's model and read one JSON answer."""
        self._ready_to_route()
        async with self.dispatcher.open(body["model"], path, orjson.dumps(body)) as (node, resp):
            if resp.status >= 400:
                raise await _refusal(node, resp)
            try:
                raw = await resp.read()
            except BROKEN as exc:
                raise _broke(self.dispatcher, node, exc, "broke off its answer") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, f"node {node.id} sent a broken answer: {exc}",
                                "upstream_error") from None

    @contextlib.asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[Answers]:
        """POST to the best node and iterate its NDJSON objects; errors before the first byte
        (no node, every candidate refused, a 4xx) raise at entry."""
        self._ready_to_route()
        hide = not self.auth.enabled
        try:
            async with self.dispatcher.open(body["model"], path,
                                            orjson.dumps(body)) as (node, resp):
                if resp.status >= 400:
                    raise await _refusal(node, resp)
                try:
                    yield Answers(resp, node, self.dispatcher, hide=hide)
                finally:
                    # A finished answer leaves its connection for the next request; an
                    # abandoned one closes it, which cancels the work at the node.
                    if resp.done:
                        resp.release()
                    else:
                        resp.close()
        except ApiError as exc:
            # Streams report errors in their own format, past the error middleware's hiding.
            raise _public(exc, hide) from None

    async def tags(self) -> dict[str, Any]:
        """The inference service's merged `/api/tags`; while it is down, the table's models."""
        try:
            body: dict[str, Any] = await self.get("/api/tags")
            return body
        except UpstreamError as exc:
            if exc.status != 503 or not self.table.received:
                raise
        names = sorted({m for n in self.table.healthy() for m in n.models})
        return {"models": [{"name": name, "model": name} for name in names]}

    def routing(self) -> dict[str, Any]:
        """What `/health` shows of the routing table and where it comes from."""
        table, contact = self.table, self.table.contact
        now = time.time()
        return {"source": self.base_url, "generation": table.generation,
                "nodes": len(table.nodes), "healthy_nodes": len(table.healthy()),
                "fresh": table.received and contact.error is None,
                "age": round(now - contact.received, 3) if contact.received else None,
                "error": contact.error,
                "down_for": round(now - contact.since, 3) if contact.since else None}

    async def readiness(self) -> Readiness:
        """Ready once a table arrived from a ready inference; degraded on a stale table or
        nodes down."""
        table, contact = self.table, self.table.contact
        if not table.received:
            return Readiness(ready=False, reasons=[
                f"waiting for the routing table from inference at {self.base_url}: "
                f"{contact.error or 'no answer yet'}"])
        if not table.ready:
            return Readiness(ready=False, reasons=[
                "inference: checking the Ollama nodes for the first time"])
        reasons, summary = [], []
        if contact.error is not None:
            age = time.time() - (contact.received or 0)
            reasons.append(f"{contact.error}; routing with the last table (generation "
                           f"{table.generation}, {len(table.nodes)} nodes, {age:.0f}s old)")
            summary.append(f"inference does not answer; routing with the last table "
                           f"({age:.0f}s old)")
        nodes = list(table.nodes.values())
        healthy = table.healthy()
        down = [n for n in nodes if not n.healthy]
        reasons += [f"node {n.id} ({n.url}) is down: {n.last_error or 'down'}" for n in down]
        if down:
            summary.append(nodes_down(len(nodes), len(down)))
        if not nodes:
            reasons.append("no Ollama node configured (set OLLAMA_NODES or POST /api/v1/nodes "
                           "on the inference service)")
            summary.append(reasons[-1])
        elif not healthy:
            reasons.insert(0, "no healthy Ollama node: model requests answer 503")
            summary.insert(0, reasons[0])
        return Readiness(ready=True, degraded=bool(reasons), reasons=reasons, summary=summary)
