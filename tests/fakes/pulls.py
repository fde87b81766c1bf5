"""The stand-in's `/api/pull` and `/api/delete`, as Ollama answers them (kept apart from serving).

A pull streams Ollama's progress objects: `pulling manifest`, then for each layer
`pulling <12 hex>` with `digest`, `total` and a growing `completed`, then `verifying sha256
digest`, `writing manifest`, `success`; the model then shows in `/api/tags`. A name outside the
library (`--library`, plus the models the node starts with) gives Ollama's error: in a stream a
line `{"error": "pull model manifest: file does not exist"}` after `pulling manifest`, and with
`"stream": false` an HTTP 500 with that error. `--pull-seconds` is how long one pull takes.
Control: `GET /_fake/pulls` lists every pull asked of this node (model, outcome).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.ollama import FakeOllama

# Models the stand-in's "registry" has, besides those the node starts with.
LIBRARY = ("llama3.2", "llama3.2:1b", "qwen2.5:0.5b", "phi3", "mistral", "gemma2:2b",
           "tinyllama", "nomic-embed-text", "all-minilm", "smollm:135m")
MISSING = "pull model manifest: file does not exist"
INVALID = "invalid model name"
# Ollama's name rule, loosely: [host/][namespace/]model[:tag], no spaces.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*"
                  r"(:[A-Za-z0-9_][A-Za-z0-9._-]*)?$")
STEPS = 5  # progress objects per layer after the first


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The stand-in's pull options."""
    parser.add_argument("--library", default=",".join(LIBRARY),
                        help="models a pull can fetch (the node's own models can be, too)")
    parser.add_argument("--pull-seconds", type=float, default=0.1,
                        help="how long one pull takes, spread over its progress objects")


def key(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def layers(model: str) -> list[tuple[str, int]]:
    """(digest, size) of the model's layers: the weights, then template, license, params."""
    sizes = [1_000_000_000 + int(hashlib.sha256(model.encode()).hexdigest()[:6], 16),
             1_429, 7_711, 96]
    return [("sha256:" + hashlib.sha256(f"{model}/{i}".encode()).hexdigest(), size)
            for i, size in enumerate(sizes)]


@dataclass
class PullRecord:
    model: str
    stream: bool
    outcome: str = "running"


class Library:
    """What a pull can fetch, how long it takes, and the pulls asked of this node."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.names = {key(n.strip()) for n in args.library.split(",") if n.strip()}
        self.seconds = args.pull_seconds
        self.records: list[PullRecord] = []

    def has(self, model: str, fake: FakeOllama) -> bool:
        return key(model) in self.names or key(model) in fake.models

    async def progress(self, model: str) -> Any:
        """Ollama's progress objects for a pull of a known model, paced over `seconds`."""
        yield {"status": "pulling manifest"}
        parts = layers(key(model))
        pause = self.seconds / (len(parts) * (STEPS + 1))
        for digest, total in parts:
            short = digest.removeprefix("sha256:")[:12]
            for step in range(STEPS + 1):
                await asyncio.sleep(pause)
                line = {"status": f"pulling {short}", "digest": digest, "total": total}
                completed = total * step // STEPS
                if completed:
                    line["completed"] = completed
                yield line
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        yield {"status": "success"}


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def pull(fake: FakeOllama, request: web.Request) -> web.StreamResponse:
    """`POST /api/pull {"model", "stream"?}` (also the older `name`)."""
    await fake.hang_if_asked()
    body = await fake.body(request)
    model = body.get("model") or body.get("name")
    if not isinstance(model, str) or not NAME.match(model):
        return _error(INVALID, 400)
    stream = body.get("stream", True) is not False
    library: Library = fake.library
    record = PullRecord(model=key(model), stream=stream)
    library.records.append(record)
    if fake.mode == "500":
        record.outcome = "injected failure"
        return _error("injected failure", 500)
    known = library.has(model, fake)
    if not stream:
        if not known:
            record.outcome = MISSING
            return _error(MISSING, 500)
        async for _ in library.progress(model):
            pass
        fake.models[key(model)] = model
        record.outcome = "success"
        return web.json_response({"status": "success"})
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)

    async def send(line: dict[str, Any]) -> None:
        await response.write((json.dumps(line) + "\n").encode())

    try:
        if not known:
            await send({"status": "pulling manifest"})
            await send({"error": MISSING})
            record.outcome = MISSING
        else:
            async for line in library.progress(model):
                if line["status"] == "success":
                    fake.models[key(model)] = model  # listed from here on, as after a pull
                    record.outcome = "success"
                await send(line)
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        record.outcome = "cancelled"  # the caller left: Ollama stops the download
        raise
    return response


async def delete(fake: FakeOllama, request: web.Request) -> web.Response:
    """`DELETE /api/delete {"model"}`: 200 with no body, or 404 naming the model."""
    await fake.hang_if_asked()
    body = await fake.body(request)
    model = body.get("model") or body.get("name")
    if not isinstance(model, str) or not model:
        return _error(INVALID, 400)
    if key(model) not in fake.models:
        return _error(f"model '{model}' not found", 404)
    del fake.models[key(model)]
    return web.Response()


async def pulls(fake: FakeOllama, request: web.Request) -> web.Response:
    """`GET /_fake/pulls`: every pull asked of this node, oldest first."""
    return web.json_response({"pulls": [asdict(r) for r in fake.library.records]})


def add_routes(app: web.Application, fake: FakeOllama) -> None:
    """Mount pull, delete and the pull log."""
    app.router.add_post("/api/pull", lambda r: pull(fake, r))
    app.router.add_delete("/api/delete", lambda r: delete(fake, r))
    app.router.add_get("/_fake/pulls", lambda r: pulls(fake, r))
