"""The stand-in Ollama's scheduler: slots, its own queue, model loads and eviction, counters.

As Ollama documents it (/work/shared/reference/ollama-api.md, "Serving and scheduling"):
`OLLAMA_NUM_PARALLEL` requests of one loaded model run at once, more wait in the node's own
queue; past `OLLAMA_MAX_QUEUE` waiting the node answers 503 "server busy"; a model not loaded
costs the load delay first (one load, however many requests wait for it); past
`OLLAMA_MAX_LOADED_MODELS` a loaded model is evicted, the least recently used idle one first.
As Ollama's scheduler does (server/sched.go), requests are admitted one at a time in arrival
order, and a model is unloaded only once no request uses it: a request that needs an
eviction waits until the victim's requests are done, and the requests that came after it
wait behind it, whatever their model. So a node never runs more models than it holds, nor
an evicted model's requests beside the new one's. `counters()` is
what `GET /_fake/stats` shows: the most requests it held at once, per model too, so a test
can prove nobody sent a node more than its slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

BUSY = "server busy, please try again.  maximum pending requests exceeded"
KEEP_ALIVE = 300.0  # seconds a loaded model stays listed in /api/ps (Ollama's 5m)


# Seconds the request being served spent waiting for its model's load in the admission
# (the middleware admits, the handler reports the load as `load_duration`).
ADMITTED_LOAD: contextvars.ContextVar[float] = contextvars.ContextVar("admitted_load",
                                                                      default=0.0)


class ServerBusy(Exception):
    """The node's own queue is full: Ollama answers 503 with BUSY."""


@dataclass
class Settings:
    """The node's scheduling environment (Ollama's own variable names)."""

    # Ollama's own default is 4; unset here (0: no limit) so tests and benches that predate
    # the stand-in's slots keep their load. A test of scheduling sets it.
    num_parallel: int = 0
    max_queue: int = 512
    max_loaded: int = 3
    load_delay: float = 0.0

    @classmethod
    def from_env(cls, load_delay: float) -> Settings:
        env = os.environ
        return cls(int(env.get("OLLAMA_NUM_PARALLEL", 0)), int(env.get("OLLAMA_MAX_QUEUE", 512)),
                   int(env.get("OLLAMA_MAX_LOADED_MODELS", 3)), load_delay)


@dataclass
class Counters:
    """What the node saw: requests, the most held and queued at once, loads, refusals."""

    requests: int = 0
    held: int = 0
    most_held: int = 0
    queued: int = 0
    most_queued: int = 0
    busy: int = 0  # 503 "server busy" answers
    loads: dict[str, int] = field(default_factory=dict)
    evictions: int = 0
    held_by_model: dict[str, int] = field(default_factory=dict)
    most_held_by_model: dict[str, int] = field(default_factory=dict)


class Scheduler:
    """Slots per model, the queue in front of them, loads and eviction of one stand-in node."""

    def __init__(self, settings: Settings, warm: list[str] | None = None) -> None:
        self.settings = settings
        self.counters = Counters()
        self.loaded: dict[str, float] = {}  # model -> time.time() it expires
        self.used: dict[str, float] = {}  # model -> monotonic time of its last use
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._loading: dict[str, asyncio.Future[None]] = {}
        self.refs: dict[str, int] = {}  # model -> requests admitted or waiting for it
        self._admission = asyncio.Lock()
        self._drained = asyncio.Condition()  # a model's last request ended, or a load did
        for model in warm or []:
            self.loaded[model] = time.time() + KEEP_ALIVE
            self.used[model] = time.monotonic()

    def _semaphore(self, model: str) -> asyncio.Semaphore:
        if model not in self._slots:
            parallel = self.settings.num_parallel or 1 << 30  # 0: no limit
            self._slots[model] = asyncio.Semaphore(parallel)
        return self._slots[model]

    @contextlib.asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        """Admit a request for `model` (its model loaded, after an eviction if need be), then
        hold one of the model's slots; ServerBusy when the queue is full."""
        counters = self.counters
        counters.requests += 1
        semaphore = self._semaphore(model)
        parallel = self.settings.num_parallel or 1 << 30
        waits = (self._admission.locked() or self.refs.get(model, 0) >= parallel
                 or self._needs_room(model))
        if waits:
            if counters.queued >= self.settings.max_queue:
                counters.busy += 1
                raise ServerBusy(BUSY)
            counters.queued += 1
            counters.most_queued = max(counters.most_queued, counters.queued)
        admitted = False
        try:
            try:
                started = time.perf_counter()
                async with self._admission:  # one at a time, in order (asyncio.Lock is FIFO)
                    await self._make_room(model)
                    pending = self._start_load(model)
                    self.refs[model] = self.refs.get(model, 0) + 1
                    admitted = True
                if pending is not None:
                    await asyncio.shield(pending)
                ADMITTED_LOAD.set(time.perf_counter() - started if pending is not None else 0.0)
                await semaphore.acquire()
            finally:
                if waits:
                    counters.queued -= 1
            counters.held += 1
            counters.most_held = max(counters.most_held, counters.held)
            by_model = counters.held_by_model
            by_model[model] = by_model.get(model, 0) + 1
            most = counters.most_held_by_model
            most[model] = max(most.get(model, 0), by_model[model])
            try:
                yield
            finally:
                counters.held -= 1
                by_model[model] -= 1
                self.used[model] = time.monotonic()
                semaphore.release()
        finally:
            if admitted:
                self.refs[model] -= 1
            if admitted and not self.refs[model]:
                async with self._drained:
                    self._drained.notify_all()

    def _ready(self, model: str) -> bool:
        return self.loaded.get(model, 0) > time.time() and model not in self._loading

    def _others(self, model: str) -> list[str]:
        """The models other than `model` loaded or loading now."""
        return [m for m in self.running() if m != model] + [
            m for m in self._loading if m != model and m not in self.loaded]

    def _needs_room(self, model: str) -> bool:
        """Whether `model` can load only after another model is unloaded."""
        return (model not in self.running() and model not in self._loading
                and len(self._others(model)) >= self.settings.max_loaded)

    async def _make_room(self, model: str) -> None:
        """Past OLLAMA_MAX_LOADED_MODELS, unload one model for `model`: the least recently
        used idle one, else the least recently used, once its requests are done."""
        while self._needs_room(model):
            live = self._others(model)
            idle = [m for m in live if not self._busy(m, model)] or live
            victim = min(idle, key=lambda m: self.used.get(m, 0.0))
            async with self._drained:
                await self._drained.wait_for(lambda v=victim: not self._busy(v, model))
            self.loaded.pop(victim, None)
            self.counters.evictions += 1

    def _busy(self, victim: str, model: str) -> bool:
        """Whether requests use `victim` (or it is still loading); `model`'s own don't count."""
        return bool(self.refs.get(victim)) or victim in self._loading

    def _start_load(self, model: str) -> asyncio.Future[None] | None:
        """The load under way for `model` (started here when it is not loaded), or None."""
        if self._ready(model):
            self.loaded[model] = time.time() + KEEP_ALIVE
            self.used[model] = time.monotonic()
            return None
        if model not in self._loading:
            self._loading[model] = asyncio.ensure_future(self._load(model))
        return self._loading[model]

    async def _load(self, model: str) -> None:
        self.counters.loads[model] = self.counters.loads.get(model, 0) + 1
        try:
            if self.settings.load_delay:
                await asyncio.sleep(self.settings.load_delay)
        finally:
            del self._loading[model]
        self.loaded[model] = time.time() + KEEP_ALIVE
        self.used[model] = time.monotonic()
        async with self._drained:
            self._drained.notify_all()

    async def load(self, model: str) -> float:
        """Seconds spent loading `model` before it can answer (0 when it was loaded): for a
        request admitted by `slot`, the wait it had there; else it loads here (no eviction
        wait: used only outside the scheduled requests)."""
        admitted = ADMITTED_LOAD.get()
        if admitted:
            return admitted
        started = time.perf_counter()
        if not self._ready(model):
            self._evict_for(model)
            pending = self._start_load(model)
            if pending is not None:
                await asyncio.shield(pending)
        self.loaded[model] = time.time() + KEEP_ALIVE
        self.used[model] = time.monotonic()
        return time.perf_counter() - started

    def _evict_for(self, model: str) -> None:
        live = [m for m, t in self.loaded.items() if t > time.time() and m != model]
        while len(live) >= self.settings.max_loaded:
            idle = [m for m in live if not self.counters.held_by_model.get(m)] or live
            oldest = min(idle, key=lambda m: self.used.get(m, 0.0))
            del self.loaded[oldest]
            live.remove(oldest)
            self.counters.evictions += 1

    def running(self) -> dict[str, float]:
        """Loaded models and when each expires (what /api/ps lists)."""
        now = time.time()
        return {m: t for m, t in self.loaded.items() if t > now}

    def stats(self) -> dict[str, Any]:
        """The counters, and the settings they are to be read against."""
        c = self.counters
        return {"num_parallel": self.settings.num_parallel, "max_queue": self.settings.max_queue,
                "max_loaded_models": self.settings.max_loaded, "requests": c.requests,
                "held": c.held, "most_held": c.most_held, "queued": c.queued,
                "most_queued": c.most_queued, "busy": c.busy, "loads": dict(c.loads),
                "evictions": c.evictions, "most_held_by_model": dict(c.most_held_by_model),
                "loaded": sorted(self.running())}

    def reset(self) -> None:
        """Zero the counters (what is held and queued now stays counted)."""
        old = self.counters
        self.counters = Counters(held=old.held, most_held=old.held, queued=old.queued,
                                 most_queued=old.queued,
                                 held_by_model=old.held_by_model,
                                 most_held_by_model=dict(old.held_by_model))
