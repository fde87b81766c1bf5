"""A stand-in for Ollama (which cannot be installed here), speaking its HTTP API.

Run as a process:  python -m tests.fakes.ollama --port 11434 --models llama3.2,qwen2.5:0.5b
  --token-delay 0.005  --load-delay 0.2  --fail none|500|drop|hang|refuse

Replies are deterministic: "Hello from <model>. You said: <last user text>", one word per
token, cut by options.num_predict (done_reason "length"); " [images: N]" is added when the
messages carry N images. Tools, `format`, `think` and `logprobs` are answered as Ollama
documents them, by the conventions of tests/fakes/answers.py (a tool is called when the user
names it); `/api/embed` honours `dimensions`. `--no-logprobs` plays an Ollama too old to know
logprobs (the field is ignored). Control endpoints for tests:
  POST /_fake/fail {"mode": "none|500|drop|hang|refuse", "seconds": S?, "after": N?}
  GET  /_fake/log    every model request: path, model, started, first/last token, cancelled
  GET  /_fake/bodies the last 500 request bodies received on /api/*, oldest first
  GET  /_fake/stats  the scheduler's counters (most requests held at once, loads, 503s busy)
  POST /_fake/stats/reset  zero them
Scheduling (tests/fakes/ollama_sched.py): OLLAMA_NUM_PARALLEL, OLLAMA_MAX_QUEUE and
OLLAMA_MAX_LOADED_MODELS from the environment (or --num-parallel, --max-queue,
--max-loaded-models); --warm MODELS are loaded at start, any other costs --load-delay once.
  SIGUSR1            listen again after "refuse"
Pulls and deletes (`--library`, `--pull-seconds`, `GET /_fake/pulls`): tests/fakes/pulls.py.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes import answers, pulls
from tests.fakes.ollama_sched import Scheduler, ServerBusy, Settings

VERSION = "0.6.0-fake"
SCHEDULED = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")
MODES = ("none", "500", "drop", "hang", "refuse")


def key(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def words(text: str) -> list[str]:
    """`text` as tokens: one word each, the space before it included."""
    return [w if i == 0 else " " + w for i, w in enumerate(text.split())]


def reply_tokens(model: str, text: str) -> list[str]:
    return words(f"Hello from {model}. You said: {text}")


def embedding(text: str, size: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255.0 - 0.5, 6) for b in digest[:size]]


@dataclass
class Call:
    id: int
    path: str
    model: str
    stream: bool
    started: float = field(default_factory=time.time)
    first_token: float | None = None
    last_token: float | None = None
    finished: float | None = None
    tokens: int = 0
    cancelled: bool = False
    status: int = 200


class FakeOllama:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.name
        self.port = args.port
        self.host = args.host
        self.models = {key(m): m for m in args.models.split(",") if m.strip()}
        self.token_delay = args.token_delay
        self.load_delay = args.load_delay
        self.mode = args.fail
        self.drop_after = 2
        self.sched = scheduler(args)
        self.calls: list[Call] = []
        self.logprobs = not args.no_logprobs
        self.bodies: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
        self.site: web.SockSite | None = None
        self.runner: web.AppRunner | None = None
        self.library = pulls.Library(args)

    # --- helpers -------------------------------------------------------------------------
    def tag(self, name: str) -> dict[str, Any]:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return {"name": name, "model": name, "modified_at": "2024-06-01T00:00:00Z",
                "size": 1_000_000 + len(name), "digest": digest,
                "details": {"format": "gguf", "family": name.split(":")[0],
                            "parameter_size": "1B", "quantization_level": "Q4_0"}}

    async def hang_if_asked(self) -> None:
        if self.mode == "hang":
            await asyncio.sleep(3600)

    async def body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": "invalid JSON"}),
                                     content_type="application/json") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text=json.dumps({"error": "expected an object"}),
                                     content_type="application/json")
        self.bodies.append({"path": request.path, "body": body})
        return body

    def missing(self, model: str) -> web.Response:
        return web.json_response({"error": f'model "{model}" not found, try pulling it first'},
                                 status=404)

    def refusal(self, model: str) -> web.Response | None:
        """What Ollama answers instead of serving `model`: 404 unknown, or an injected 500."""
        if key(model) not in self.models:
            return self.missing(model)
        if self.mode == "500":
            return web.json_response({"error": "injected failure"}, status=500)
        return None

    async def load(self, model: str) -> float:
        return await self.sched.load(key(model))

    def drop(self, request: web.Request) -> None:
        assert request.transport is not None
        request.transport.abort()

    # --- API -----------------------------------------------------------------------------
    async def version(self, request: web.Request) -> web.Response:
        await self.hang_if_asked()
        return web.json_response({"version": VERSION})

    async def tags(self, request: web.Request) -> web.Response:
        await self.hang_if_asked()
        return web.json_response({"models": [self.tag(n) for n in sorted(self.models)]})

    async def ps(self, request: web.Request) -> web.Response:
        await self.hang_if_asked()
        models = [{**self.tag(n), "expires_at": datetime.fromtimestamp(t, UTC).isoformat(),
                   "size_vram": 0} for n, t in self.sched.running().items()]
        return web.json_response({"models": models})

    async def show(self, request: web.Request) -> web.Response:
        await self.hang_if_asked()
        body = await self.body(request)
        model = str(body.get("model", ""))
        refused = self.refusal(model)
        if refused is not None:
            return refused
        tag = self.tag(key(model))
        return web.json_response({"modelfile": f"FROM {model}", "parameters": "",
                                  "template": "{{ .Prompt }}", "details": tag["details"],
                                  "model_info": {"general.architecture": "fake"}})

    async def generate_like(self, request: web.Request) -> web.StreamResponse:
        chat = request.path == "/api/chat"
        await self.hang_if_asked()
        body = await self.body(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return web.json_response({"error": "model is required"}, status=400)
        refused = self.refusal(model)
        if refused is not None:
            return refused
        stream = body.get("stream", True) is not False
        if self.mode == "drop" and not stream:
            self.drop(request)
            return web.Response()
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if chat:
            users = [m.get("content", "") for m in messages if m.get("role") == "user"]
            text = str(users[-1]) if users else ""
            prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
            images = sum(len(m.get("images") or []) for m in messages)
        else:
            text = str(body.get("prompt", ""))
            prompt_words = len(text.split()) + len(str(body.get("system", "")).split())
            images = len(body.get("images") or [])
            messages = [{"role": "user", "images": body.get("images")}]
        complaint = answers.bad_image(messages)
        if complaint is not None:
            return web.json_response({"error": complaint}, status=400)
        if images:
            text += f" [images: {images}]"
        options = body.get("options") or {}
        calls = answers.tool_calls(body.get("tools"), messages) if chat else []
        reply = answers.tool_reply(messages) if chat else None
        shaped = answers.formatted(body.get("format"), text)
        thought = answers.thinking(body.get("think"), text)
        thoughts = words(thought) if thought else []
        top = body.get("top_logprobs") if isinstance(body.get("top_logprobs"), int) else 0
        with_logprobs = self.logprobs and body.get("logprobs") is True
        if calls:
            tokens = []
        elif shaped is not None:
            tokens = [shaped[i:i + 6] for i in range(0, len(shaped), 6)]
        elif reply is not None:
            tokens = words(reply)
        else:
            tokens = reply_tokens(model, text)
        reason = "stop"
        limit = options.get("num_predict") if isinstance(options, dict) else None
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, reason = tokens[:limit], "length"
        call = Call(id=len(self.calls), path=request.path, model=model, stream=stream)
        self.calls.append(call)
        started = time.perf_counter()
        load = await self.load(model)

        def piece(content: str, done: bool, thinking: str | None = None,
                  tools: list[dict[str, Any]] | None = None,
                  probs: list[str] | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {"model": model, "created_at": now_iso()}
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": content}
                if thinking:
                    message["thinking"] = thinking
                if tools:
                    message["tool_calls"] = tools
                out["message"] = message
            else:
                out["response"] = content
                if thinking:
                    out["thinking"] = thinking
            if with_logprobs and probs:
                out["logprobs"] = [answers.logprobs(t, top) for t in probs]
            out["done"] = done
            return out

        def final(content: str, whole: bool) -> dict[str, Any]:
            total = int((time.perf_counter() - started) * 1e9)
            out = piece(content, True, "".join(thoughts) if whole else None,
                        calls if whole else None, tokens if whole else None)
            out.update({"done_reason": reason, "total_duration": total,
                        "load_duration": int(load * 1e9), "prompt_eval_count": prompt_words,
                        "prompt_eval_duration": 1000, "eval_count": len(tokens),
                        "eval_duration": max(total - int(load * 1e9), 0)})
            if not chat:
                out["context"] = [1, 2, 3]
            return out

        try:
            if not stream:
                for _ in tokens:
                    if self.token_delay:
                        await asyncio.sleep(self.token_delay)
                    call.tokens += 1
                call.finished = time.time()
                return web.json_response(final("".join(tokens), True))
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            for thought_piece in thoughts:
                await response.write((json.dumps(piece("", False, thought_piece)) + "\n")
                                     .encode())
            if calls:
                await response.write((json.dumps(piece("", False, tools=calls)) + "\n")
                                     .encode())
            for index, token in enumerate(tokens):
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                if self.mode == "drop" and index >= self.drop_after:
                    self.drop(request)
                    call.cancelled = True
                    return response
                await response.write((json.dumps(piece(token, False, probs=[token])) + "\n")
                                     .encode())
                stamp = time.time()
                call.first_token = call.first_token or stamp
                call.last_token = stamp
                call.tokens += 1
            await response.write((json.dumps(final("", False)) + "\n").encode())
            await response.write_eof()
            call.finished = time.time()
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            call.cancelled = True
            raise

    async def embed(self, request: web.Request) -> web.Response:
        await self.hang_if_asked()
        body = await self.body(request)
        model = str(body.get("model", ""))
        refused = self.refusal(model)
        if refused is not None:
            return refused
        self.calls.append(Call(id=len(self.calls), path=request.path, model=model, stream=False))
        await self.load(model)
        if request.path == "/api/embeddings":
            return web.json_response({"embedding": embedding(str(body.get("prompt", "")))})
        raw = body.get("input", "")
        inputs = raw if isinstance(raw, list) else [raw]
        size = body.get("dimensions") or 8
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= 8:
            return web.json_response({"error": f"invalid dimensions {size!r}: the model "
                                               "has 8"}, status=400)
        return web.json_response({"model": model,
                                  "embeddings": [embedding(str(t), size) for t in inputs],
                                  "prompt_eval_count": sum(len(str(t).split()) for t in inputs)})

    # --- control -------------------------------------------------------------------------
    async def set_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        mode = str(body.get("mode", "none"))
        if mode not in MODES:
            return web.json_response({"error": f"mode must be one of {MODES}"}, status=400)
        self.drop_after = int(body.get("after", self.drop_after))
        if mode == "refuse":
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.refuse(body.get("seconds"))))
            return web.json_response({"mode": mode})
        self.mode = mode
        return web.json_response({"mode": mode})

    async def log(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": [asdict(c) for c in self.calls]})

    async def received(self, request: web.Request) -> web.Response:
        return web.json_response({"bodies": list(self.bodies)})

    async def refuse(self, seconds: float | None) -> None:
        if self.site is not None:
            await self.site.stop()
            self.site = None
        if seconds:
            await asyncio.sleep(float(seconds))
            await self.listen()

    async def listen(self) -> None:
        if self.site is not None or self.runner is None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(256)
        self.site = web.SockSite(self.runner, sock)
        await self.site.start()

    # --- scheduling (slots, queue, counters: tests/fakes/ollama_sched.py) -----------------
    @web.middleware
    async def hold_slot(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A model request holds one of its model's slots from before the load to its end."""
        if request.method != "POST" or request.path not in SCHEDULED or self.mode != "none":
            return await handler(request)
        try:
            model = key(str(json.loads(await request.read()).get("model") or ""))
        except (ValueError, AttributeError):
            return await handler(request)  # the handler answers the bad body
        if model not in self.models:
            return await handler(request)
        try:
            async with self.sched.slot(model):
                return await handler(request)
        except ServerBusy as exc:
            return web.json_response({"error": str(exc)}, status=503)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.sched.stats())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.sched.reset()
        return web.json_response(self.sched.stats())

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self.hold_slot])
        app.router.add_get("/", lambda r: web.Response(text="Ollama is running"))
        app.router.add_get("/api/version", self.version)
        app.router.add_get("/api/tags", self.tags)
        app.router.add_get("/api/ps", self.ps)
        app.router.add_post("/api/show", self.show)
        app.router.add_post("/api/chat", self.generate_like)
        app.router.add_post("/api/generate", self.generate_like)
        app.router.add_post("/api/embed", self.embed)
        app.router.add_post("/api/embeddings", self.embed)
        pulls.add_routes(app, self)  # /api/pull, /api/delete: tests/fakes/pulls.py
        app.router.add_post("/_fake/fail", self.set_fail)
        app.router.add_get("/_fake/log", self.log)
        app.router.add_get("/_fake/bodies", self.received)
        app.router.add_get("/_fake/stats", self.stats)
        app.router.add_post("/_fake/stats/reset", self.reset_stats)
        return app

    async def run(self) -> None:
        # Ollama cancels a request as soon as its client hangs up (its slot frees at once).
        self.runner = web.AppRunner(self.app(), handle_signals=False, access_log=None,
                                    shutdown_timeout=0.5, handler_cancellation=True)
        await self.runner.setup()
        if self.mode != "refuse":
            await self.listen()
        print(f"fake ollama {self.name} on http://{self.host}:{self.port} "
              f"models={','.join(self.models)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGUSR1,
                                lambda: asyncio.ensure_future(self.listen()))
        await stop.wait()
        await self.runner.cleanup()


def scheduler(args: argparse.Namespace) -> Scheduler:
    """The node's scheduler from Ollama's environment variables, overridden by the options."""
    settings = Settings.from_env(args.load_delay)
    for name in ("num_parallel", "max_queue", "max_loaded"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    return Scheduler(settings, [key(m) for m in args.warm.split(",") if m.strip()])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Ollama for tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="fake")
    parser.add_argument("--models", default="llama3.2")
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--load-delay", type=float, default=0.0)
    parser.add_argument("--fail", choices=MODES, default="none")
    parser.add_argument("--num-parallel", type=int, default=None,
                        help="slots per model (else $OLLAMA_NUM_PARALLEL; unset: no limit, "
                             "where Ollama's own default is 4)")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="requests waiting before 503 busy (else $OLLAMA_MAX_QUEUE, 512)")
    parser.add_argument("--max-loaded-models", dest="max_loaded", type=int, default=None,
                        help="models loaded at once (else $OLLAMA_MAX_LOADED_MODELS, 3)")
    parser.add_argument("--warm", default="", help="models loaded at start (comma-separated)")
    parser.add_argument("--no-logprobs", action="store_true",
                        help="play an Ollama that predates logprobs (ignores the field)")
    pulls.add_arguments(parser)
    asyncio.run(FakeOllama(parser.parse_args(argv)).run())


if __name__ == "__main__":
    main()
