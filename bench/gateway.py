"""Benchmark the request path: fake Ollama direct vs through inference vs through the gateway.

Non-streaming chat (zero token delay) on three paths, (a) direct to the fake node,
(b) through inference, (c) the gateway (straight to the node with the inference service's
routing table; inference is listed for its share, near zero), with the same connection count, run
interleaved (a, b, c, a, b, c, ...) and reported as medians: requests/s, p50 latency with one
connection, and each process's CPU milliseconds per 1,000 requests (the cost of each hop,
whatever the core contention). The load comes from `wrk` (a separate C process) when it is
installed, else from an in-process aiohttp client that shares the cores with the stack.
Then time to first token of a streamed chat (20 ms token delay) direct vs through the
gateway, and the hub's memory with 1,000 idle WebSocket connections. Ratios are against
baselines of the same run.
Run: .venv/bin/python -m bench.gateway [--seconds 3] [--repeats 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.services_procs import fake_nodes, running_stack  # noqa: E402

CHAT = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
PATHS = ("direct", "inference", "gateway")
# Which processes serve each path (the fake node is "node").
HOPS = {"direct": ("node",), "inference": ("node", "inference"),
        "gateway": ("node", "inference", "gateway")}
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class Run:
    """One load run: how many answers, how fast, the median latency, and CPU spent."""

    requests: int
    rps: float
    p50: float  # seconds
    cpu: dict[str, float]  # process name -> CPU seconds during the run
    elsewhere: float  # cores busy with processes outside the stack and the load generator


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """User + system CPU seconds of each process so far."""
    out = {}
    for name, proc in procs.items():
        times = proc.cpu_times()
        out[name] = times.user + times.system
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lua_script(folder: Path, body: dict[str, object]) -> Path:
    """A wrk script that POSTs `body` as JSON on every request."""
    text = json.dumps(body)
    path = folder / f"post-{len(text)}-{sum(text.encode())}.lua"
    path.write_text('wrk.method = "POST"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = [[{json.dumps(body)}]]\n")
    return path


def wrk_seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"wrk printed an unknown duration {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def wrk(url: str, script: Path, seconds: float, connections: int) -> tuple[int, float, float]:
    """Requests answered, requests/s and p50 latency (seconds) from one `wrk` run."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    text = out.stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if bad or errors:
        raise SystemExit(f"wrk against {url} saw failures:\n{text}")
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p50 = wrk_seconds(re.search(r"\s50%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    return requests, rps, p50


async def python_load(session: aiohttp.ClientSession, url: str, body: dict[str, object],
                      seconds: float, concurrency: int) -> tuple[int, float, float]:
    """Like `wrk`, from this process: requests, requests/s and p50 latency."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=payload, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return len(latencies), len(latencies) / elapsed, percentile(latencies, 0.5)


class Loader:
    """Runs load against a URL with wrk, or with the in-process client when wrk is absent."""

    def __init__(self, folder: Path, session: aiohttp.ClientSession, use_wrk: bool) -> None:
        self.folder = folder
        self.session = session
        self.use_wrk = use_wrk
        self.generator_cpu = 0.0  # CPU seconds the load generator spent in measured runs

    async def run(self, url: str, body: dict[str, object], seconds: float,
                  connections: int) -> tuple[int, float, float]:
        if self.use_wrk:
            script = lua_script(self.folder, body)
            before = children_cpu()
            result = await asyncio.to_thread(wrk, url, script, seconds, connections)
            self.generator_cpu += children_cpu() - before
            return result
        before = time.process_time()
        result = await python_load(self.session, url, body, seconds, connections)
        self.generator_cpu += time.process_time() - before
        return result


async def measure_path(loader: Loader, url: str, body: dict[str, object],
                       procs: dict[str, psutil.Process], seconds: float,
                       connections: int) -> Run:
    """Throughput and CPU with `connections`, then p50 latency with one connection."""
    before, busy, generator, started = (cpu_seconds(procs), machine_busy(),
                                        loader.generator_cpu, time.perf_counter())
    requests, rps, _ = await loader.run(url, body, seconds, connections)
    after, elapsed = cpu_seconds(procs), time.perf_counter() - started
    cpu = {n: after[n] - before[n] for n in procs}
    others = (machine_busy() - busy - sum(cpu.values())
              - (loader.generator_cpu - generator)) / elapsed
    _, _, p50 = await loader.run(url, body, max(1.0, seconds / 2), 1)
    return Run(requests, rps, p50, cpu, max(0.0, others))


def report_throughput(runs: dict[str, list[Run]], connections: int, seconds: float,
                      generator: str, cores: int) -> None:
    """Medians, ratios against direct, and CPU per 1,000 requests by process."""
    rps = {p: statistics.median(r.rps for r in runs[p]) for p in PATHS}
    p50 = {p: statistics.median(r.p50 for r in runs[p]) for p in PATHS}
    # CPU per request: total CPU over total requests of the path's runs, per process.
    per_k = {p: {n: 1e6 * sum(r.cpu[n] for r in runs[p]) / sum(r.requests for r in runs[p])
                 for n in HOPS[p]} for p in PATHS}
    repeats = len(runs["direct"])
    elsewhere = statistics.median(r.elsewhere for p in PATHS for r in runs[p])
    print(f"non-streaming chat: {generator}, {connections} connections, {seconds:g}s per run, "
          f"{repeats} interleaved repeats, medians (p50: one connection)")
    print(f"  {'path':<10} {'req/s':>8} {'x direct':>9} {'p50 ms':>8} {'+ms':>6}   "
          f"CPU ms per 1,000 requests")
    for path in PATHS:
        cpu = ", ".join(f"{n} {per_k[path][n]:.0f}" for n in HOPS[path])
        print(f"  {path:<10} {rps[path]:8.0f} {rps[path] / rps['direct']:9.2f} "
              f"{p50[path] * 1e3:8.2f} {(p50[path] - p50['direct']) * 1e3:6.2f}   {cpu}")
    # What the CPU costs allow on this machine, were the cores shared perfectly: each
    # process is one thread, and the chain shares `cores` with nothing else.
    node = per_k["direct"]["node"]
    for path in PATHS[1:]:
        costs = per_k[path]
        ceiling = min(cores / sum(costs.values()), 1 / max(costs.values())) * node
        print(f"  {path}: CPU per request x{sum(costs.values()) / node:.2f} of the node's; "
              f"ceiling on {cores} cores without load generator: {ceiling:.2f} x direct")
    print(f"  other processes kept {elsewhere:.2f} cores busy during the runs (median)")


async def first_token(session: aiohttp.ClientSession, url: str, body: dict[str, object],
                      is_token: Callable[[bytes], bool], samples: int) -> list[float]:
    """Seconds from sending a streamed request to the first line that carries a token."""
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        async with session.post(url, json=body) as resp:
            async for line in resp.content:
                if is_token(line):
                    out.append(time.perf_counter() - started)
                    break
            assert resp.status == 200, resp.status
            await resp.read()
    return out


def ndjson_token(line: bytes) -> bool:
    return bool(line.strip()) and bool(json.loads(line).get("message", {}).get("content"))


def sse_token(line: bytes) -> bool:
    if not line.startswith(b"data: {"):
        return False
    choices = json.loads(line[6:]).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


async def hub_memory(hub_url: str, pid: int, connections: int) -> tuple[float, float]:
    """The hub's RSS (MiB) before, and per idle connection (KiB) after opening them all."""
    process = psutil.Process(pid)
    before = process.memory_info().rss
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = []
        for start in range(0, connections, 100):
            sockets += await asyncio.gather(*(session.ws_connect(hub_url + "/chat")
                                              for _ in range(start, min(start + 100,
                                                                        connections))))
        await asyncio.gather(*(ws.receive() for ws in sockets))  # each got its nodes message
        await asyncio.sleep(0.5)
        after = process.memory_info().rss
        await asyncio.gather(*(ws.close() for ws in sockets))
    return before / 2**20, (after - before) / connections / 1024


async def measure(urls: dict[str, str], pids: dict[str, int], folder: Path,
                  args: argparse.Namespace) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    use_wrk = shutil.which("wrk") is not None and not args.python_load
    procs = {name: psutil.Process(pid) for name, pid in pids.items() if name != "hub"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as session:
        loader = Loader(folder, session, use_wrk)
        targets: dict[str, tuple[str, dict[str, object]]] = {
            "direct": (urls["fast"] + "/api/chat", CHAT),
            "inference": (urls["inference"] + "/api/chat", CHAT),
            "gateway": (urls["gateway"] + "/v1/chat/completions", OPENAI_CHAT),
        }
        for url, body in targets.values():  # warm up connections and code paths
            await loader.run(url, body, 1.0, args.connections)
        loader.generator_cpu = 0.0
        runs: dict[str, list[Run]] = {p: [] for p in PATHS}
        for _ in range(args.repeats):
            for path in PATHS:
                url, body = targets[path]
                runs[path].append(await measure_path(loader, url, body, procs, args.seconds,
                                                     args.connections))
        generator = "wrk" if use_wrk else "in-process aiohttp client ({})".format(
            "--python-load" if args.python_load else "wrk not installed")
        generator += f", services' event loop {os.environ.get('OLLAMAMAX_EVENT_LOOP', 'auto')}"
        report_throughput(runs, args.connections, args.seconds, generator,
                          psutil.cpu_count() or 1)
        total = sum(r.requests for p in PATHS for r in runs[p])
        print(f"  load generator: {1e6 * loader.generator_cpu / total:.0f} CPU ms per "
              f"1,000 requests")

        stream = {**CHAT, "stream": True, "model": "slowpoke"}
        await first_token(session, urls["slow"] + "/api/chat", stream, ndjson_token, 2)
        direct = await first_token(session, urls["slow"] + "/api/chat", stream,
                                   ndjson_token, 20)
        sse_body = {**OPENAI_CHAT, "stream": True, "model": "slowpoke"}
        await first_token(session, urls["gateway"] + "/v1/chat/completions", sse_body,
                          sse_token, 2)
        gateway = await first_token(session, urls["gateway"] + "/v1/chat/completions",
                                    sse_body, sse_token, 20)
        d, g = statistics.median(direct), statistics.median(gateway)
        print("time to first token, 20 ms per token (median of 20)")
        print(f"  direct {d * 1e3:.2f} ms, gateway {g * 1e3:.2f} ms: "
              f"+{(g - d) * 1e3:.2f} ms, ratio {g / d:.3f}")
    base, per = await hub_memory(urls["hub"], pids["hub"], 1000)
    grown = per * 1000 / 1024
    print(f"hub memory: {base:.1f} MiB at rest, +{per:.1f} KiB per idle WebSocket "
          f"(1,000 connections: +{grown:.1f} MiB, x{(base + grown) / base:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per path")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--python-load", action="store_true",
                        help="use the in-process aiohttp client even when wrk is installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nodes = fake_nodes(Path(tmp), [("fast", "llama3.2", []),
                                       ("slow", "slowpoke", ["--token-delay", "0.02"])])
        with running_stack(Path(tmp), nodes, ["inference", "gateway", "hub"]) as stack:
            urls = {"fast": nodes[0].url, "slow": nodes[1].url,
                    "inference": stack.url("inference"), "gateway": stack.url("gateway"),
                    "hub": stack.url("hub")}
            assert nodes[0].proc is not None
            pids = {"node": nodes[0].proc.popen.pid,
                    **{name: proc.popen.pid for name, proc in stack.procs.items()}}
            asyncio.run(measure(urls, pids, Path(tmp), args))


if __name__ == "__main__":
    main()
