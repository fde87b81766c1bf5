"""Benchmark the request path: fake Ollama direct vs through inference vs gateway -> inference.

Prints requests/s and p50/p99 latency of non-streaming chat (zero token delay), time to first
token of a streamed chat (20 ms token delay) direct vs through the gateway, and the hub's
memory with 1,000 idle WebSocket connections. Ratios are against baselines of the same run.
Run: .venv/bin/python -m bench.gateway [--seconds 5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.services_procs import fake_nodes, running_stack  # noqa: E402

CHAT = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(session: aiohttp.ClientSession, url: str, body: dict[str, object],
               seconds: float, concurrency: int) -> tuple[float, list[float]]:
    """Requests/s and every latency, with `concurrency` clients for `seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=payload, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


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


async def measure(urls: dict[str, str], hub_pid: int, seconds: float,
                  concurrency: int) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as session:
        paths: dict[str, tuple[str, dict[str, object]]] = {
            "direct": (urls["fast"] + "/api/chat", CHAT),
            "inference": (urls["inference"] + "/api/chat", CHAT),
            "gateway": (urls["gateway"] + "/v1/chat/completions", OPENAI_CHAT),
        }
        rows = {}
        for name, (url, body) in paths.items():
            await load(session, url, body, 0.5, concurrency)  # warm up connections
            rps, _ = await load(session, url, body, seconds, concurrency)
            _, single = await load(session, url, body, seconds / 2, 1)
            rows[name] = (rps, percentile(single, 0.5), percentile(single, 0.99))
        base_rps, base_p50, _ = rows["direct"]
        print(f"non-streaming chat, {concurrency} clients for {seconds:g}s "
              f"(latency: one client at a time)")
        print(f"  {'path':<10} {'req/s':>8} {'x direct':>9} {'p50 ms':>8} {'+ms':>6} {'p99 ms':>8}")
        for name, (rps, p50, p99) in rows.items():
            print(f"  {name:<10} {rps:8.0f} {rps / base_rps:9.2f} {p50 * 1e3:8.2f} "
                  f"{(p50 - base_p50) * 1e3:6.2f} {p99 * 1e3:8.2f}")
        stream = {**CHAT, "stream": True, "model": "slowpoke"}
        await first_token(session, urls["slow"] + "/api/chat", stream, ndjson_token, 2)
        direct = await first_token(session, urls["slow"] + "/api/chat", stream,
                                   ndjson_token, 20)
        sse_body = {**OPENAI_CHAT, "stream": True}
        gateway = await first_token(session, urls["gateway"] + "/v1/chat/completions",
                                    {**sse_body, "model": "slowpoke"}, sse_token, 20)
        d, g = statistics.median(direct), statistics.median(gateway)
        print("time to first token, 20 ms per token (median of 20)")
        print(f"  direct {d * 1e3:.2f} ms, gateway {g * 1e3:.2f} ms: "
              f"+{(g - d) * 1e3:.2f} ms, ratio {g / d:.3f}")
    base, per = await hub_memory(urls["hub"], hub_pid, 1000)
    grown = per * 1000 / 1024
    print(f"hub memory: {base:.1f} MiB at rest, +{per:.1f} KiB per idle WebSocket "
          f"(1,000 connections: +{grown:.1f} MiB, x{(base + grown) / base:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nodes = fake_nodes(Path(tmp), [("fast", "llama3.2", []),
                                       ("slow", "slowpoke", ["--token-delay", "0.02"])])
        with running_stack(Path(tmp), nodes, ["inference", "gateway", "hub"]) as stack:
            urls = {"fast": nodes[0].url, "slow": nodes[1].url,
                    "inference": stack.url("inference"), "gateway": stack.url("gateway"),
                    "hub": stack.url("hub")}
            asyncio.run(measure(urls, stack.procs["hub"].popen.pid, args.seconds,
                                args.concurrency))


if __name__ == "__main__":
    main()
