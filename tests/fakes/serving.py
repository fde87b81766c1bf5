"""A minimal stand-in for Ollama's serving limits, for bench/scheduling.py (issue 19).

Kept apart from tests/fakes/ollama.py: issue-19-sched writes the faithful version
(tests/fakes/ollama_sched.py: slots, queue, eviction, /api/ps). This one speaks the same
options and counters, so that when that is merged this module and its three lines in ollama.py
go, and bench/scheduling.py runs unchanged.

- `--num-parallel N` (or `OLLAMA_NUM_PARALLEL`; 0, the default here, means no limit): requests
  of one model served at once; more wait, first come first served, up to `--max-queue`
  (`OLLAMA_MAX_QUEUE`, 512) waiting, past which the node answers 503 "server busy" as Ollama
  does.
- `--warm M1,M2`: models loaded at start; any other pays `--load-delay` once (concurrent
  requests for a model that is loading wait for that one load); past `--max-loaded-models`
  (`OLLAMA_MAX_LOADED_MODELS`; 0 here: no limit) the least recently used model is evicted.
- `GET /_fake/stats`: the most requests held and queued at once, 503s, cold loads per model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

if TYPE_CHECKING:
    from tests.fakes.ollama import FakeOllama

MODEL_PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")
BUSY = "server busy, please try again.  maximum pending requests exceeded"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serving options."""
    parser.add_argument("--num-parallel", type=int,
                        default=int(os.environ.get("OLLAMA_NUM_PARALLEL", "0")))
    parser.add_argument("--max-queue", type=int,
                        default=int(os.environ.get("OLLAMA_MAX_QUEUE", "512")))
    parser.add_argument("--max-loaded-models", dest="max_loaded", type=int,
                        default=int(os.environ.get("OLLAMA_MAX_LOADED_MODELS", "0")),
                        help="models loaded at once, the least recently used evicted (0: any)")
    parser.add_argument("--warm", default="", help="models loaded at start (comma-separated)")


def key(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class Serving:
    """Slots per model, the node's own queue, shared cold loads, and their counters."""

    def __init__(self, args: argparse.Namespace, fake: FakeOllama) -> None:
        self.fake = fake
        self.num_parallel = args.num_parallel
        self.max_queue = args.max_queue
        self.slots: dict[str, asyncio.Semaphore] = {}
        self.requests = self.held = self.most_held = self.queued = self.most_queued = 0
        self.busy = 0  # 503s past the queue
        self.max_loaded = args.max_loaded
        self.loads: Counter[str] = Counter()
        self.evictions = 0
        self.used: dict[str, float] = {}  # model -> its last use (monotonic)
        self.loading: dict[str, asyncio.Lock] = {}
        for model in (m.strip() for m in args.warm.split(",")):
            if model:
                fake.loaded[key(model)] = time.time() + 10 ** 9
        self._load = fake.load
        fake.load = self.load  # type: ignore[method-assign]

    async def load(self, model: str) -> float:
        """The fake's load, once per model at a time, counted when it is cold."""
        name = key(model)
        started = time.perf_counter()
        async with self.loading.setdefault(name, asyncio.Lock()):
            if name not in self.fake.loaded:
                self.loads[name] += 1
                self._evict_for(name)
            await self._load(model)
        self.used[name] = time.monotonic()
        return time.perf_counter() - started  # a wait for another request's load included

    def _evict_for(self, name: str) -> None:
        others = [m for m in self.fake.loaded if m != name]
        while self.max_loaded > 0 and len(others) >= self.max_loaded:
            oldest = min(others, key=lambda m: self.used.get(m, 0.0))
            del self.fake.loaded[oldest]
            others.remove(oldest)
            self.evictions += 1

    async def _slot(self, model: str, request: web.Request,
                    handler: Handler) -> web.StreamResponse:
        free = self.slots.setdefault(model, asyncio.Semaphore(self.num_parallel))
        if free.locked():
            if self.queued >= self.max_queue:
                self.busy += 1
                return web.json_response({"error": BUSY}, status=503)
            self.queued += 1
            self.most_queued = max(self.most_queued, self.queued)
            try:
                await free.acquire()
            finally:
                self.queued -= 1
        else:
            await free.acquire()
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        try:
            return await handler(request)
        finally:
            self.held -= 1
            free.release()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Hold a slot of the model for the whole answer (a stream included)."""
        if request.path not in MODEL_PATHS or self.num_parallel <= 0:
            return await handler(request)
        try:
            model = key(str((await request.json()).get("model") or ""))
        except (ValueError, AttributeError):
            return await handler(request)  # the handler answers the bad body
        self.requests += 1
        return await self._slot(model, request, handler)

    async def stats(self, request: web.Request) -> web.Response:
        """`GET /_fake/stats` (the names of tests/fakes/ollama_sched.py's counters)."""
        return web.json_response({"num_parallel": self.num_parallel,
                                  "max_queue": self.max_queue, "requests": self.requests,
                                  "held": self.held, "most_held": self.most_held,
                                  "queued": self.queued, "most_queued": self.most_queued,
                                  "busy": self.busy, "loads": dict(self.loads),
                                  "evictions": self.evictions,
                                  "loaded": sorted(self.fake.loaded)})

    def add_to(self, app: web.Application) -> None:
        """Mount the middleware and the counters."""
        app.middlewares.append(self.middleware)
        app.router.add_get("/_fake/stats", self.stats)
