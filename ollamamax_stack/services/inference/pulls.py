"""Pulls and deletes across the pool: which nodes, one node's pull, many nodes' pulls merged.

A node's pull is always asked for as a stream (its progress keeps the connection busy through a
long download); `stream: false` is the cluster's own answer, made once every node is done.
Every failure is a `NodeFailure` whose message names the node (id and host:port).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from ollamamax_stack.services.routing.failures import describe_error
from ollamamax_stack.services.routing.node import Node, model_key, normalise_url

BAD_GATEWAY = 502
SHORT_OF_NODES = 503


class NodeFailure(Exception):
    """One node could not pull or delete; `status` is what the node answered (502: no answer)."""

    def __init__(self, node: Node, reason: str, status: int = BAD_GATEWAY) -> None:
        super().__init__(f"node {node.id} ({node.name}): {reason}")
        self.node = node
        self.reason = reason
        self.status = status


class UnknownNode(ValueError):
    """A `nodes` entry that names no node of the pool."""


@dataclass
class Outcome:
    """How one node's pull or delete ended."""

    node: Node
    status: str  # "success", "present" (already there), "deleted", "absent", "failed"
    failure: NodeFailure | None = None

    @property
    def failed(self) -> bool:
        """Whether the node could not do what was asked."""
        return self.failure is not None

    def summary(self) -> dict[str, Any]:
        """The node's line in a whole (`stream: false`) answer."""
        out: dict[str, Any] = {"node": self.node.id, "status": self.status}
        if self.failure is not None:
            out["error"] = str(self.failure)
        return out


def resolve(nodes: dict[str, Node], refs: Sequence[str]) -> list[Node]:
    """The nodes `refs` name, each by id, URL or host:port, in order and once each."""
    found: list[Node] = []
    for ref in refs:
        match = nodes.get(ref) or _by_address(nodes.values(), ref)
        if match is None:
            known = ", ".join(f"{n.id} ({n.name})" for n in nodes.values()) or "none"
            raise UnknownNode(f"no node {ref!r} in the pool (known: {known})")
        if match not in found:
            found.append(match)
    return found


def _by_address(nodes: Iterable[Node], ref: str) -> Node | None:
    for node in nodes:
        if ref == node.name:
            return node
        with contextlib.suppress(ValueError):
            if normalise_url(ref) == node.url:
                return node
    return None


@dataclass(frozen=True)
class PullPlan:
    """Which nodes pull, which already hold the model, and why none could be found."""

    pull: list[Node]
    present: list[Node]
    shortfall: str | None = None  # replicas that cannot be reached: the reason, else None


def plan_pull(candidates: list[Node], model: str, replicas: int | None) -> PullPlan:
    """Every candidate pulls; with `replicas`, only enough healthy ones to hold that many."""
    if replicas is None:
        return PullPlan(pull=list(candidates), present=[])
    key = model_key(model)
    present = [n for n in candidates if key in n.models]
    spare = [n for n in candidates if key not in n.models and n.healthy]
    spare.sort(key=lambda n: len(n.models))  # the emptiest nodes first
    wanted = max(replicas - len(present), 0)
    shortfall = None
    if wanted > len(spare):
        down = [f"{n.id} ({n.name})" for n in candidates
                if key not in n.models and not n.healthy]
        shortfall = (f"{replicas} replicas asked for, but only {len(present) + len(spare)} "
                     f"nodes can hold {key}" + (f" (down: {', '.join(down)})" if down else ""))
    return PullPlan(pull=spare[:wanted], present=present, shortfall=shortfall)


async def _error_of(response: aiohttp.ClientResponse) -> str:
    raw = await response.read()
    with contextlib.suppress(ValueError):
        body = orjson.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])
    return raw[:200].decode(errors="replace").strip() or "no reason given"


async def pull_from(session: aiohttp.ClientSession, node: Node, model: str, *,
                    insecure: bool = False,
                    read_timeout: float = 300.0) -> AsyncIterator[dict[str, Any]]:
    """The node's progress objects for pulling `model`; NodeFailure if it does not succeed."""
    if not node.healthy:
        raise NodeFailure(node, f"is down: {node.last_error or 'not answering'}")
    body: dict[str, Any] = {"model": model, "stream": True}
    if insecure:
        body["insecure"] = True
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
    succeeded = False
    try:
        async with session.post(node.url + "/api/pull", data=orjson.dumps(body),
                                headers={"Content-Type": "application/json"},
                                timeout=timeout) as response:
            if response.status != 200:
                raise NodeFailure(node, await _error_of(response), response.status)
            async for raw in response.content:
                if not raw.strip():
                    continue
                try:
                    line = orjson.loads(raw)
                except ValueError:
                    raise NodeFailure(node, "answered a line that is not JSON") from None
                if not isinstance(line, dict):
                    raise NodeFailure(node, "answered a line that is not a JSON object")
                if "error" in line:
                    # Ollama's own failure inside a 200 stream (an unknown model, a full disk).
                    raise NodeFailure(node, str(line["error"]), 500)
                succeeded = line.get("status") == "success"
                yield line
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = describe_error(exc)
        if isinstance(exc, TimeoutError):
            reason = f"sent no progress for {read_timeout:g}s"
        raise NodeFailure(node, reason) from None
    if not succeeded:
        raise NodeFailure(node, "ended its answer before saying success")


async def delete_on(session: aiohttp.ClientSession, node: Node, model: str,
                    timeout: float = 30.0) -> Outcome:
    """Delete `model` on one node: deleted, absent (404), or failed."""
    if not node.healthy:
        return Outcome(node, "failed",
                       NodeFailure(node, f"is down: {node.last_error or 'not answering'}"))
    try:
        async with session.delete(node.url + "/api/delete", data=orjson.dumps({"model": model}),
                                  headers={"Content-Type": "application/json"},
                                  timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status == 200:
                return Outcome(node, "deleted")
            if response.status == 404:
                return Outcome(node, "absent")
            failure = NodeFailure(node, await _error_of(response), response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = f"no answer within {timeout:g}s" if isinstance(exc, TimeoutError) \
            else describe_error(exc)
        failure = NodeFailure(node, reason)
    return Outcome(node, "failed", failure)


@dataclass(frozen=True)
class Progress:
    """One progress object of one node, or (`outcome` set) how that node's pull ended."""

    node: Node
    line: dict[str, Any] | None = None
    outcome: Outcome | None = None


async def pull_all(session: aiohttp.ClientSession, nodes: list[Node], model: str, *,
                   insecure: bool = False,
                   read_timeout: float = 300.0) -> AsyncGenerator[Progress, None]:
    """Every node's pull at once, their progress objects interleaved as they come."""
    queue: asyncio.Queue[Progress] = asyncio.Queue()

    async def one(node: Node) -> None:
        try:
            async for line in pull_from(session, node, model, insecure=insecure,
                                        read_timeout=read_timeout):
                await queue.put(Progress(node, line=line))
        except NodeFailure as failure:
            await queue.put(Progress(node, outcome=Outcome(node, "failed", failure)))
            return
        await queue.put(Progress(node, outcome=Outcome(node, "success")))

    tasks = [asyncio.ensure_future(one(n)) for n in nodes]
    try:
        pending = len(tasks)
        while pending:
            item = await queue.get()
            if item.outcome is not None:
                pending -= 1
            yield item
    finally:
        for task in tasks:  # the client left: stop the nodes' pulls, as Ollama would
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def failure_message(action: str, model: str, outcomes: list[Outcome],
                    shortfall: str | None = None) -> str | None:
    """One line naming every node that failed (and a replica shortfall), or None."""
    failed = [str(o.failure) for o in outcomes if o.failure is not None]
    parts = [f"{action} of {model!r} failed on {len(failed)} of {len(outcomes)} nodes: "
             + "; ".join(failed)] if failed else []
    if shortfall:
        parts.append(f"{action} of {model!r}: {shortfall}")
    return "; ".join(parts) or None


def answer_status(outcomes: list[Outcome]) -> int:
    """The HTTP status of a failed whole answer: the nodes' own when they agree, 502 when they
    differ, 503 when no node failed but too few could take the model."""
    statuses = {o.failure.status for o in outcomes if o.failure is not None}
    if not statuses:
        return SHORT_OF_NODES
    return statuses.pop() if len(statuses) == 1 else BAD_GATEWAY
