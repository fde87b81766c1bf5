"""A minimal stand-in for Ollama's serving limits, for bench/scheduling.py (issue 19).

Kept apart from tests/fakes/ollama.py: issue-19-sched writes the faithful version (slots, queue,
eviction, /api/ps); when it is merged, this module gives way to it and the bench reads its
counters instead (bench/scheduling.py `node_counters`).

- `--slots N` (or `OLLAMA_NUM_PARALLEL`; 0, the default, means no limit): model requests served
  at once; more wait, first come first served, up to `--max-queue` (`OLLAMA_MAX_QUEUE`, 512),
  past which the node answers 503 "server busy" as Ollama does.
- `--warm M1,M2`: models loaded at start; any other pays `--load-delay` once (concurrent
  requests for a model that is loading wait for that one load).
- `GET /_fake/serving`: slots, the most requests held at once, how many arrived with every
  slot taken, 503s, and the cold loads per model.
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
    parser.add_argument("--slots", type=int, default=int(os.environ.get("OLLAMA_NUM_PARALLEL",
                                                                        "0")))
    parser.add_argument("--max-queue", type=int,
                        default=int(os.environ.get("OLLAMA_MAX_QUEUE", "512")))
    parser.add_argument("--warm", default="", help="models loaded at start (comma-separated)")


def key(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class Serving:
    """Slots, the node's own queue, shared cold loads, and their counters."""

    def __init__(self, args: argparse.Namespace, fake: FakeOllama) -> None:
        self.fake = fake
        self.slots = args.slots
        self.max_queue = args.max_queue
        self.free = asyncio.Semaphore(self.slots) if self.slots > 0 else None
        self.held = 0
        self.max_held = 0
        self.beyond_slots = 0  # requests that arrived with every slot taken
        self.busy = 0  # 503s past the queue
        self.loads: Counter[str] = Counter()
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
            await self._load(model)
        return time.perf_counter() - started  # a wait for another request's load included

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Hold a slot for the whole answer (a stream included); queue or refuse past them."""
        if request.path not in MODEL_PATHS:
            return await handler(request)
        if self.slots > 0 and self.held >= self.slots + self.max_queue:
            self.busy += 1
            return web.json_response({"error": BUSY}, status=503)
        self.held += 1
        self.max_held = max(self.max_held, self.held)
        if self.slots > 0 and self.held > self.slots:
            self.beyond_slots += 1
        try:
            if self.free is None:
                return await handler(request)
            async with self.free:
                return await handler(request)
        finally:
            self.held -= 1

    async def counters(self, request: web.Request) -> web.Response:
        """`GET /_fake/serving`."""
        return web.json_response({"slots": self.slots, "held": self.held,
                                  "max_held": self.max_held, "beyond_slots": self.beyond_slots,
                                  "busy": self.busy, "loads": dict(self.loads)})

    def add_to(self, app: web.Application) -> None:
        """Mount the middleware and the counters."""
        app.middlewares.append(self.middleware)
        app.router.add_get("/_fake/serving", self.counters)
