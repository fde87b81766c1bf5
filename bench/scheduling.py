"""Scheduling under load, one run: the stack's scheduler beside least-in-flight, nginx
round-robin and LiteLLM's router, on the same arrivals.

Three stand-in nodes (tests/fakes/ollama.py), each with 2 slots (`--num-parallel`, Ollama's
`OLLAMA_NUM_PARALLEL`; more wait in the node's own queue), room for one model loaded at a time
(`--max-loaded-models 1`, a GPU that holds one: so a node serves 2 at once, and a request for
another model evicts the loaded one and pays the 3 s cold load, `--load-delay`), and one of
three models warm (`--warm`); every node can serve all three. Arrivals are Poisson at
80 % of the nodes' capacity (6 slots / the service time), then 3x that for the burst (10 s),
then 80 % again; each request asks for one of the three models at random and half of them
stream. The same arrivals, from one seed, go to every system, each on fresh nodes:

- **ollamamax**: gateway -> node, the routing table from inference, `OLLAMAMAX_ROUTING` unset
  (the scheduler: slots, queue, warm first);
- ollamamax `OLLAMAMAX_ROUTING=least-in-flight` (the routing before issue 19);
- nginx (Debian), round-robin over the three nodes, Ollama's API;
- LiteLLM's proxy (`litellm[proxy]`, its virtualenv under .bench/ as bench/peers.py makes it),
  router `simple-shuffle` and `least-busy`, one worker by default (`--litellm-workers`): its
  best case, as least-busy counts per worker, and half the start-up time of two.

Latency counts from each request's scheduled arrival (no coordinated omission). Printed: p50
and p99 latency (whole, streamed), p99 time to first token, cold loads (the nodes' count),
503s, the most requests a node held beyond its slots at once (in its own queue: 0 when the
front end never sent more than the slots), requests lost (no answer, a
broken stream, another error), and p99 as a ratio to nginx round-robin's in this run.

Run: .venv/bin/python bench/scheduling.py [--quick] [--only ollamamax,nginx,...] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.peers import KEY, LITELLM_VENV, litellm_ready, stop_group  # noqa: E402
from tests.integration.services_procs import (  # noqa: E402
    FakeNode,
    Stack,
    fake_nodes,
    http,
    registry_ports,
    spawn,
    wait_until,
)
from tests.portbase import free_offset, free_port  # noqa: E402

MODELS = ("alpha", "bravo", "charlie")  # node i has MODELS[i] warm
SLOTS = 2
LOAD_DELAY = 3.0
TOKENS = 20
TOKEN_DELAY = 0.05  # so one answer takes about TOKENS * TOKEN_DELAY = 1 s
SERVICE_TIME = TOKENS * TOKEN_DELAY
PROMPT = " ".join(f"w{i}" for i in range(TOKENS + 5))  # the reply is longer than TOKENS
LOAD = 0.8  # of capacity
BURST = 3.0  # times LOAD
CLIENT_TIMEOUT = 180.0
SYSTEMS = ("ollamamax", "least-in-flight", "nginx", "litellm-shuffle", "litellm-least-busy")
LABELS = {"ollamamax": "**ollamamax** (scheduler)",
          "least-in-flight": "ollamamax, `OLLAMAMAX_ROUTING=least-in-flight`",
          "nginx": "nginx round-robin", "litellm-shuffle": "LiteLLM simple-shuffle",
          "litellm-least-busy": "LiteLLM least-busy"}


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds from the start
    model: str
    stream: bool


@dataclass(frozen=True)
class Phases:
    base: float
    burst: float
    tail: float


def arrivals(seed: int, phases: Phases) -> list[Arrival]:
    """Poisson arrivals at LOAD of capacity, BURST x that during the burst; one fixed list."""
    rng = random.Random(seed)
    rate = LOAD * len(MODELS) * SLOTS / SERVICE_TIME
    out, now = [], 0.0
    edges = [(phases.base, rate), (phases.base + phases.burst, rate * BURST),
             (phases.base + phases.burst + phases.tail, rate)]
    for end, lam in edges:
        while True:
            now += rng.expovariate(lam)
            if now >= end:
                now = end
                break
            out.append(Arrival(now, rng.choice(MODELS), rng.random() < 0.5))
    return out


@dataclass
class System:
    """One way to reach the nodes."""

    name: str
    url: str
    openai: bool  # OpenAI's API (SSE) or Ollama's (NDJSON)
    headers: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], None] = lambda: None  # waits until it answers (LiteLLM starts slowly)

    def body(self, arrival: Arrival) -> dict[str, Any]:
        messages = [{"role": "user", "content": PROMPT}]
        if self.openai:
            return {"model": arrival.model, "messages": messages, "stream": arrival.stream,
                    "max_tokens": TOKENS}
        return {"model": arrival.model, "messages": messages, "stream": arrival.stream,
                "options": {"num_predict": TOKENS}}

    def has_token(self, line: bytes) -> bool:
        """Whether a streamed line carries content (the first one is the TTFT)."""
        if self.openai:
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                return False
            choices = json.loads(line[6:]).get("choices") or [{}]
            return bool((choices[0].get("delta") or {}).get("content"))
        return bool((json.loads(line).get("message") or {}).get("content"))


@dataclass
class Result:
    arrival: Arrival
    status: int | None = None  # None: no answer
    latency: float | None = None
    ttft: float | None = None
    complete: bool = False


async def one(session: aiohttp.ClientSession, system: System, arrival: Arrival,
              start: float) -> Result:
    result = Result(arrival)
    await asyncio.sleep(max(0.0, start + arrival.at - time.perf_counter()))
    due = start + arrival.at
    try:
        async with session.post(system.url, json=system.body(arrival),
                                headers=system.headers) as resp:
            result.status = resp.status
            if resp.status != 200:
                await resp.read()
                return result
            if not arrival.stream:
                body = await resp.json(content_type=None)
                result.complete = bool(body.get("choices") or body.get("message"))
            else:
                ended = False
                async for raw in resp.content:
                    line = raw.strip()
                    if not line:
                        continue
                    if result.ttft is None and system.has_token(line):
                        result.ttft = time.perf_counter() - due
                    if line == b"data: [DONE]" or b'"done":true' in line.replace(b" ", b""):
                        ended = True
                result.complete = ended and result.ttft is not None
            result.latency = time.perf_counter() - due
    except (aiohttp.ClientError, TimeoutError, ValueError):
        result.complete = False
    return result


async def drive(system: System, plan: list[Arrival]) -> list[Result]:
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.perf_counter() + 0.2
        return list(await asyncio.gather(*(one(session, system, a, start) for a in plan)))


# --- the systems --------------------------------------------------------------------------


def answers(url: str, headers: dict[str, str] | None = None) -> Any:
    """The JSON body of a 200 at `url`, else None (not up yet)."""
    try:
        status, body = http("GET", url, headers=headers, timeout=5)
    except OSError:
        return None
    return body if status == 200 else None


def start_nodes(tmp: Path) -> list[FakeNode]:
    """Three fresh stand-in nodes: 2 slots, 3 s cold load, one model warm each."""
    nodes = fake_nodes(tmp, [(f"node{i}", ",".join(MODELS),
                              ["--num-parallel", str(SLOTS), "--max-loaded-models", "1",
                               "--load-delay", str(LOAD_DELAY),
                               "--warm", MODELS[i], "--token-delay", str(TOKEN_DELAY)])
                             for i in range(len(MODELS))])
    return [n.start() for n in nodes]


def node_counters(node: FakeNode) -> dict[str, Any]:
    """The node's scheduling counters (`GET /_fake/stats`: loads, busy, most_queued)."""
    status, body = http("GET", node.url + "/_fake/stats")
    if status != 200:
        raise SystemExit(f"bench/scheduling.py: {node.url}/_fake/stats answered {status}: "
                         "the stand-in has no scheduling counters")
    return dict(body)


def node_entry(node: FakeNode) -> str:
    """The node's `OLLAMA_NODES` entry with its slots, where the stack knows slots (issue 19;
    before it, the bare URL)."""
    if importlib.util.find_spec("ollamamax_stack.services.routing.policy") is None:
        return node.url
    return f"{node.url};slots={SLOTS}"


@contextmanager
def ollamamax(nodes: list[FakeNode], tmp: Path, routing: str | None) -> Iterator[System]:
    env = {"OLLAMA_NODES": ",".join(node_entry(n) for n in nodes), "OLLAMAMAX_API_KEYS": KEY}
    if routing:
        env["OLLAMAMAX_ROUTING"] = routing
    stack = Stack(free_offset(registry_ports()), tmp / "run", env)
    try:
        stack.start("inference")
        stack.start("gateway")
        url = stack.url("gateway")
        headers = {"Authorization": f"Bearer {KEY}"}

        def listed() -> bool:
            body = answers(url + "/v1/models", headers)
            names = {m["id"] for m in body["data"]} if body else set()
            return {f"{m}:latest" for m in MODELS} <= names or set(MODELS) <= names

        wait_until(listed, timeout=60, what="the gateway listing the three models")
        yield System("ollamamax", url + "/v1/chat/completions", True, headers)
    finally:
        stack.stop_all()


NGINX_CONF = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream nodes {{ {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://nodes; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_buffering off;
                 proxy_read_timeout 600s; }}
  }}
}}
"""


@contextmanager
def nginx(nodes: list[FakeNode], tmp: Path) -> Iterator[System]:
    folder = tmp / "nginx"
    folder.mkdir()
    port = free_port()
    conf = folder / "nginx.conf"
    servers = " ".join(f"server 127.0.0.1:{n.port};" for n in nodes)
    conf.write_text(NGINX_CONF.format(tmp=folder, servers=servers, port=port))
    proc = spawn("nginx", ["nginx", "-e", str(folder / "nginx-error.log"), "-c", str(conf),
                           "-p", str(folder)], folder / "nginx.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url + "/api/version") is not None,
                   what="nginx")
        yield System("nginx", url + "/api/chat", False)
    finally:
        proc.stop()


LITELLM_CONF = """model_list:
{deployments}
router_settings:
  routing_strategy: {strategy}
litellm_settings:
  telemetry: false
  set_verbose: false
  json_logs: false
  request_timeout: 600
general_settings: {{}}
"""


@contextmanager
def litellm(nodes: list[FakeNode], tmp: Path, strategy: str, workers: int) -> Iterator[System]:
    folder = tmp / f"litellm-{strategy}"
    folder.mkdir()
    deployments = "\n".join(
        f"  - model_name: {m}\n    litellm_params: {{model: ollama_chat/{m}, "
        f'api_base: "{n.url}"}}' for m in MODELS for n in nodes)
    conf = folder / "config.yaml"
    conf.write_text(LITELLM_CONF.format(deployments=deployments, strategy=strategy))
    port = free_port()
    env = {"LITELLM_MASTER_KEY": KEY, "LITELLM_TELEMETRY": "False",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "DISABLE_SCHEMA_UPDATE": "True", "LITELLM_MODE": "PRODUCTION", "NO_DOCS": "True"}
    os.environ.pop("DATABASE_URL", None)
    proc = spawn("litellm", [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(conf),
                             "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", str(workers),
                             "--timeout_worker_healthcheck", "120"], folder / "litellm.log",
                 env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> None:
        try:
            wait_until(lambda: answers(url + "/health/liveliness") is not None,
                       timeout=300, what="LiteLLM")
        except AssertionError:
            raise RuntimeError(f"LiteLLM did not answer; its log:\n{proc.tail()}") from None

    try:
        yield System(f"litellm-{strategy}", url + "/v1/chat/completions", True,
                     {"Authorization": f"Bearer {KEY}"}, ready)
    finally:
        stop_group(proc)


@contextmanager
def system_for(name: str, nodes: list[FakeNode], tmp: Path,
               args: argparse.Namespace) -> Iterator[System]:
    if name == "ollamamax":
        with ollamamax(nodes, tmp, None) as system:
            yield system
    elif name == "least-in-flight":
        with ollamamax(nodes, tmp, "least-in-flight") as system:
            yield system
    elif name == "nginx":
        with nginx(nodes, tmp) as system:
            yield system
    else:
        strategy = {"litellm-shuffle": "simple-shuffle",
                    "litellm-least-busy": "least-busy"}[name]
        with litellm(nodes, tmp, strategy, args.litellm_workers) as system:
            yield system


# --- figures ------------------------------------------------------------------------------


@dataclass
class Figures:
    requests: int
    p50: float
    p99: float
    p99_whole: float
    p99_stream: float
    p99_ttft: float
    cold_loads: int
    busy: int  # 503s the client saw
    beyond_slots: int  # the most requests a node held beyond its slots at once (queued)
    lost: int
    seconds: float


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def figures(results: list[Result], counters: list[dict[str, Any]], seconds: float) -> Figures:
    done = [r for r in results if r.status == 200 and r.complete and r.latency is not None]
    lat = [r.latency for r in done if r.latency is not None]
    whole = [r.latency for r in done if not r.arrival.stream and r.latency is not None]
    streamed = [r.latency for r in done if r.arrival.stream and r.latency is not None]
    ttft = [r.ttft for r in done if r.ttft is not None]
    busy = sum(1 for r in results if r.status == 503)
    return Figures(requests=len(results), p50=pct(lat, 50), p99=pct(lat, 99),
                   p99_whole=pct(whole, 99), p99_stream=pct(streamed, 99),
                   p99_ttft=pct(ttft, 99),
                   cold_loads=sum(sum(c.get("loads", {}).values()) for c in counters),
                   busy=busy, beyond_slots=max(int(c.get("most_queued", 0)) for c in counters),
                   lost=len(results) - len(done) - busy, seconds=seconds)


@contextmanager
def on_fresh_nodes(name: str, tmp: Path,
                   args: argparse.Namespace) -> Iterator[tuple[list[FakeNode], System]]:
    """Three fresh nodes and the system `name` over them, both stopped after."""
    folder = tmp / name
    folder.mkdir()
    nodes = start_nodes(folder)
    try:
        with system_for(name, nodes, folder, args) as system:
            yield nodes, system
    finally:
        for node in nodes:
            if node.proc is not None:
                node.proc.stop()


def measure(nodes: list[FakeNode], system: System, plan: list[Arrival]) -> Figures:
    started = time.perf_counter()
    results = asyncio.run(drive(system, plan))
    took = time.perf_counter() - started
    return figures(results, [node_counters(n) for n in nodes], took)


def run_group(group: list[str], plan: list[Arrival], tmp: Path, args: argparse.Namespace,
              notes: list[str]) -> dict[str, Figures]:
    """Start the group's systems together (LiteLLM's two take a minute each to start), wait
    until all answer, then measure one after the other."""
    out: dict[str, Figures] = {}
    with ExitStack() as held:
        running = {}
        for name in group:
            running[name] = held.enter_context(on_fresh_nodes(name, tmp, args))
        for name, (_, system) in list(running.items()):
            try:
                system.ready()
            except RuntimeError as exc:
                notes.append(f"{name} left out: {exc}")
                del running[name]
        for name, (nodes, system) in running.items():
            out[name] = figures_of = measure(nodes, system, plan)
            print(f"{name}: {figures_of.requests} requests in {figures_of.seconds:.0f} s",
                  file=sys.stderr, flush=True)
    return out


def report(results: dict[str, Figures], plan: list[Arrival], phases: Phases,
           notes: list[str]) -> None:
    rate = LOAD * len(MODELS) * SLOTS / SERVICE_TIME
    print(f"\n{len(plan)} requests: Poisson at {rate:.1f}/s (80 % of 3 nodes x {SLOTS} slots, "
          f"~{SERVICE_TIME:g} s each) for {phases.base:g} s, {rate * BURST:.1f}/s for "
          f"{phases.burst:g} s, {rate:.1f}/s for {phases.tail:g} s; half streamed; "
          f"cold load {LOAD_DELAY:g} s\n")
    base = results.get("nginx")
    print("| system | p50 s | p99 s | p99 whole s | p99 stream s | p99 TTFT s | cold loads "
          "| 503s | most beyond a node's slots | lost | p99 vs nginx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f in results.items():
        ratio = f"{f.p99 / base.p99:.2f}x" if base and base.p99 else "-"
        print(f"| {LABELS[name]} | {f.p50:.2f} | {f.p99:.2f} | {f.p99_whole:.2f} | "
              f"{f.p99_stream:.2f} | {f.p99_ttft:.2f} | {f.cold_loads} | {f.busy} | "
              f"{f.beyond_slots} | {f.lost} | {ratio} |")
    for note in notes:
        print(f"\n{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="short phases (6 s, a 4 s burst, 2 s; else 10, 10, 3)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--litellm-workers", type=int, default=1)
    parser.add_argument("--only", default=",".join(SYSTEMS),
                        help=f"comma-separated, of {', '.join(SYSTEMS)}")
    args = parser.parse_args()
    wanted = [s for s in SYSTEMS if s in args.only.split(",")]
    unknown = sorted(set(args.only.split(",")) - set(SYSTEMS))
    if unknown:
        raise SystemExit(f"bench/scheduling.py: unknown system {unknown[0]!r} "
                         f"(known: {', '.join(SYSTEMS)})")
    if "nginx" in wanted and shutil.which("nginx") is None:
        raise SystemExit("bench/scheduling.py: nginx is not installed (make system-deps)")
    phases = Phases(6, 4, 2) if args.quick else Phases(10, 10, 3)
    plan = arrivals(args.seed, phases)
    notes: list[str] = []
    if any(s.startswith("litellm") for s in wanted):
        why = litellm_ready()
        if why is not None:
            notes.append(f"LiteLLM left out: {why}")
            wanted = [s for s in wanted if not s.startswith("litellm")]
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    results: dict[str, Figures] = {}
    # LiteLLM's two start together (idle while the other runs); every other system alone.
    groups = [[s for s in wanted if s.startswith("litellm")],
              *[[s] for s in wanted if not s.startswith("litellm")]]
    with tempfile.TemporaryDirectory() as name:
        for group in filter(None, groups):
            results.update(run_group(group, plan, Path(name), args, notes))
    results = {s: results[s] for s in SYSTEMS if s in results}
    report(results, plan, phases, notes)


if __name__ == "__main__":
    main()
