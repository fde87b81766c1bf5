"""Keeps a RouteTable in step with the inference service by long-polling `/api/v1/routes`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.routing.table import RouteTable

log = logging.getLogger("ollamamax.routing")
WAIT = 25.0  # seconds one long-poll may hang at the inference service
RETRY = 1.0  # seconds between tries while the inference service does not answer
FIRST_RETRY = 0.1  # the same before the first table: start-up order should cost little
Fetch = Callable[[str, float], Awaitable[Any]]  # (path, timeout) -> JSON document


class TableFollower:
    """One long-poll at a time; subscribers hear of every table that changed something."""

    def __init__(self, table: RouteTable, fetch: Fetch, wait: float = WAIT) -> None:
        self.table = table
        self.fetch = fetch
        self.wait = wait
        self.subscribers: set[Callable[[RouteTable], None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()

    async def first(self, timeout: float) -> None:
        """Wait until the first table arrived or the first try failed (at most `timeout`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), timeout)

    async def _poll(self) -> None:
        table = self.table
        path = f"/api/v1/routes?after={table.generation}&wait={self.wait:g}"
        started = time.monotonic()
        try:
            changed = table.apply(await self.fetch(path, self.wait + 10))
        except (ApiError, ValueError, KeyError, TypeError) as exc:
            message = exc.message if isinstance(exc, ApiError) else f"bad table: {exc}"
            if table.contact.error is None:
                log.warning("routing table: %s; routing with the last one", message)
            table.lost(message)
            self._first.set()
            await asyncio.sleep(RETRY if table.received else FIRST_RETRY)
            return
        if changed:
            for callback in list(self.subscribers):
                callback(table)
        self._first.set()
        if not changed and time.monotonic() - started < 0.5:
            # An early answer without news: the service is draining; don't spin on it.
            await asyncio.sleep(RETRY)

    async def _loop(self) -> None:
        while True:
            await self._poll()

    async def start(self) -> None:
        """Start following."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
