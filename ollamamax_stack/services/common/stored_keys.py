"""A service's copy of the key store: looked up in memory, refreshed when the store changes.

Every POLL seconds one query reads the store's change counter (a one-row primary-key read);
only when it moved are all keys read again. A request never waits on the database: its key is
a dict lookup by sha256, expiry is checked against the copy's `expires_at` at that instant, and
a revocation reaches every service within POLL plus one reload. A key this copy does not know
(created a moment ago) makes it read the store at once: one read for every such request in
flight, at most every CATCH_UP seconds, so a flood of made-up keys costs a read per CATCH_UP.
Last use is kept in memory and written in one batch every `OLLAMAMAX_KEYS_LAST_USED_EVERY`
seconds (60) and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ollamamax_stack.keystore.locate import StoreLocation, open_store
from ollamamax_stack.keystore.model import ACTIVE, PREFIX, StoredKey, digest
from ollamamax_stack.keystore.store import KeyStore

log = logging.getLogger("ollamamax.services")
POLL = 0.25  # seconds between reads of the change counter: the bound on a revocation's delay
LAST_USED_EVERY = 60.0
CATCH_UP = 0.05  # the shortest time between two reads for unknown keys


class StoredKeys:
    """The keys of the stack's store as this process last read them."""

    def __init__(self, location: StoreLocation, last_used_every: float = LAST_USED_EVERY,
                 poll: float = POLL) -> None:
        self.location = location
        self.last_used_every = last_used_every
        self.poll = poll
        self._store: KeyStore | None = None
        self._by_digest: dict[str, StoredKey] = {}
        self._by_name: dict[str, StoredKey] = {}
        self._counter: int | None = None
        self._used: dict[str, float] = {}
        self._flushed = time.monotonic()
        self._error: str | None = None
        self.loaded_at: float | None = None
        self._apps = 0
        self._read_at = 0.0  # monotonic time of the last read of the counter
        self._catching: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # the follower's thread and the last flush at shutdown

    @property
    def holds_keys(self) -> bool:
        """Whether auth must be on for the store: it has a key (even a revoked one), or it has
        not been read yet (unknown is closed, never open)."""
        return self.unread or bool(self._by_name)

    @property
    def unread(self) -> bool:
        """Whether the store was never read (its keys are unknown)."""
        return self._counter is None

    @property
    def error(self) -> str | None:
        """Why the last read failed, if it did."""
        return self._error

    def lookup(self, credential: str) -> StoredKey | None:
        """The stored key this credential is, whatever its state."""
        return self._by_digest.get(digest(credential))

    async def find(self, credential: str) -> StoredKey | None:
        """`lookup`, after reading the store first when an `omx_` key is not in the copy."""
        found = self.lookup(credential)
        if found is None and credential.startswith(PREFIX) and self._task is not None:
            await self._catch_up()
            found = self.lookup(credential)
        return found

    async def find_named(self, name: str) -> StoredKey | None:
        """`named`, after reading the store first when the copy has no such key (a token of a
        key created a moment ago, traded at another service)."""
        found = self.named(name)
        if found is None and self._task is not None:
            await self._catch_up()
            found = self.named(name)
        return found

    async def _catch_up(self) -> None:
        if self._catching is None:
            if time.monotonic() - self._read_at < CATCH_UP:
                return
            self._catching = asyncio.get_running_loop().create_task(self._step())
            self._catching.add_done_callback(self._caught_up)
        await asyncio.shield(self._catching)

    def _caught_up(self, task: asyncio.Task[None]) -> None:
        self._catching = None

    def named(self, name: str) -> StoredKey | None:
        """The stored key called `name`."""
        return self._by_name.get(name)

    def used(self, key: StoredKey) -> None:
        """Note a use of `key`: written with the next batch, not now."""
        self._used[key.name] = time.time()

    def health(self) -> dict[str, Any]:
        """What /health shows of the store: where, how many keys, whether the last read worked."""
        now = time.time()
        return {"store": self.location.kind, "keys": len(self._by_name),
                "active": sum(1 for k in self._by_name.values() if k.state(now) == ACTIVE),
                "error": self._error}

    def refresh(self) -> None:
        """Read the counter, and every key when it moved (blocking: run in a thread)."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        if self._store is None:
            self._store = open_store(self.location)
        counter = self._store.counter()
        self._read_at = time.monotonic()
        if counter != self._counter:
            keys = self._store.keys()
            self._by_digest = {k.digest: k for k in keys}
            self._by_name = {k.name: k for k in keys}
            self._counter = counter
            self.loaded_at = time.time()
        if self._used and time.monotonic() - self._flushed >= self.last_used_every:
            self._flush()

    def flush(self) -> None:
        """Write the pending last-use times (blocking: run in a thread)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        pending, self._used = self._used, {}
        self._flushed = time.monotonic()
        if pending and self._store is not None:
            try:
                self._store.record_use(pending)
            except Exception:
                for name, when in pending.items():  # kept for the next batch
                    self._used[name] = max(when, self._used.get(name, 0.0))
                raise

    def _failed(self, exc: Exception) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if message != self._error:
            log.warning("key store %s: %s (keeping the keys read at %s)",
                        self.location.describe(), message, self.loaded_at)
        self._error = message
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None  # reopened at the next poll

    async def _step(self) -> None:
        try:
            await asyncio.to_thread(self.refresh)
            self._error = None
        except Exception as exc:  # any database error: keep the last copy, try again
            self._failed(exc)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            await self._step()

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: read the store before serving, follow it, write last uses at the end.

        One follower per process: inference's two apps share it (the last one out stops it)."""
        self._apps += 1
        if self._apps == 1:
            await self._step()
            self._task = asyncio.get_running_loop().create_task(self._follow())
        try:
            yield
        finally:
            self._apps -= 1
            if self._apps == 0:
                await self._stop()

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.flush)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
