"""Follows the inference service's node set (long-poll) and tells subscribers of changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ollamamax_stack.services.common.inference_client import InferenceClient, UpstreamError

log = logging.getLogger("ollamamax.hub")
WAIT = 25.0  # seconds a long-poll may hang at the inference service
RETRY = 1.0


def summary(node: dict[str, Any]) -> dict[str, Any]:
    """What a chat client needs to know of a node."""
    return {key: node.get(key) for key in ("id", "url", "healthy", "models")}


class NodesWatcher:
    """The last known nodes, refreshed whenever the inference service's pool changes."""

    def __init__(self, client: InferenceClient) -> None:
        self.client = client
        self.nodes: list[dict[str, Any]] | None = None
        self.subscribers: set[Callable[[list[dict[str, Any]]], None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()

    async def current(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """The nodes now (waits briefly for the first answer after start)."""
        if self.nodes is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first.wait(), timeout)
        return self.nodes or []

    async def _loop(self) -> None:
        generation = -1
        while True:
            try:
                body = await self.client.get(
                    f"/api/v1/nodes?after={generation}&wait={WAIT}", timeout=WAIT + 10)
            except (UpstreamError, ValueError) as exc:
                log.debug("cannot follow nodes: %s", exc)
                self._first.set()
                await asyncio.sleep(RETRY)
                continue
            generation = int(body.get("generation", -1))
            snapshot = [summary(n) for n in body.get("nodes", [])]
            if snapshot != self.nodes:
                self.nodes = snapshot
                for callback in list(self.subscribers):
                    callback(snapshot)
            self._first.set()

    async def start(self) -> None:
        """Start following."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
