"""Chaos run: kill -9 services, the watcher and supervisord under steady load; count the damage.

A real stack (`ollamamax up -d`, the default registry at a free offset) in front of a fake
Ollama on the registry's Ollama port. An openai client sends non-streaming chat completions
through the gateway at concurrency 8, plus a few streaming chats, while this script kills -9
a random part of the stack 30 times, pausing between kills once the stack has recovered:
a service (gateway, hub, fallback, inference), the watcher, or supervisord. Services die with
supervisord, so after a supervisord kill the script does what an operator (or a systemd unit
around `up`) does: `ollamamax up -d`, counted in that kill's recovery time.

Prints, per kill: target, time to recover (status up again, with a new pid for what was
killed), the requests that failed meanwhile. Then the requests failed in total and those
not in flight on a killed process; recovery median/max per kind of target, each against the
service's own start-to-ready time in the same run (the baseline); the throughput while
calm vs under chaos; and what `down` left: processes and bound ports (both must be 0).
Run: .venv/bin/python bench/chaos.py [--kills 30] [--pause 2] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ollamamax_stack.hostports import bindable  # noqa: E402
from ollamamax_stack.registry import load_registry  # noqa: E402
from tests.portbase import free_offset  # noqa: E402

REGISTRY = ROOT / "config" / "ports.toml"
SERVICES = ("gateway", "hub", "fallback", "inference")
TARGETS = (*SERVICES, "watcher", "supervisord")
ON_PATH = {"gateway", "inference", "supervisord"}  # what a request through the gateway needs
MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass
class Request:
    """One client request: when it ran and whether it failed."""

    started: float
    ended: float = 0.0
    ok: bool = False
    error: str = ""


@dataclass
class Kill:
    """One kill -9 and how the stack came back."""

    target: str
    pid: int
    at: float
    recovered: float | None = None
    requests_failed: int = 0


@dataclass
class Load:
    """The client load: every request made, and a switch to stop it."""

    requests: list[Request] = field(default_factory=list)
    running: bool = True


def ollamamax(offset: int, run_dir: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI on this stack."""
    argv = [sys.executable, "-m", "ollamamax_stack", "--config", str(REGISTRY),
            "--offset", str(offset), "--run-dir", str(run_dir), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def status(offset: int, run_dir: Path) -> dict[str, Any]:
    """`status --json`, parsed."""
    done = ollamamax(offset, run_dir, "status", "--json")
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def pids(current: dict[str, Any]) -> dict[str, int | None]:
    """The pid of each target in a status."""
    found: dict[str, int | None] = {s["name"]: s["pid"] for s in current["services"]}
    found["watcher"] = current["watcher"]["pid"]
    found["supervisord"] = current["supervisord"]["pid"]
    return found


def healthy(current: dict[str, Any]) -> bool:
    """Every service ready and the supervisor's parts running."""
    return (current["stack"] == "up" and current["watcher"]["state"] == "running"
            and current["supervisord"]["state"] == "running")


async def client_loop(load: Load, base: str, stream: bool) -> None:
    """Chat completions one after the other until the load stops."""
    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="chaos", max_retries=0,
                                timeout=15.0)
    while load.running:
        request = Request(time.monotonic())
        load.requests.append(request)
        try:
            if stream:
                chunks = await client.chat.completions.create(
                    model="llama3.2", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
                async for _ in chunks:
                    pass
            else:
                await client.chat.completions.create(model="llama3.2",
                                                     messages=MESSAGES)  # type: ignore[arg-type]
            request.ok = True
        except Exception as exc:  # every failure counts, whatever its kind
            request.error = type(exc).__name__
            await asyncio.sleep(0.1)  # as a client with a short backoff would; no spinning
        request.ended = time.monotonic()
    await client.close()


async def wait_recovered(offset: int, run_dir: Path, kill: Kill, timeout: float = 60) -> None:
    """Poll status until the stack is healthy again with a new pid for what was killed."""
    deadline = time.monotonic() + timeout
    brought_up = False
    while time.monotonic() < deadline:
        current = await asyncio.to_thread(status, offset, run_dir)
        if kill.target == "supervisord" and not brought_up and current["stack"] == "down":
            done = await asyncio.to_thread(ollamamax, offset, run_dir, "up", "-d")
            brought_up = True
            if done.returncode != 0:
                print(f"  up -d after the supervisord kill: {done.stderr.strip()}")
            continue
        if healthy(current) and pids(current).get(kill.target) not in (None, kill.pid):
            kill.recovered = time.monotonic() - kill.at
            return
        await asyncio.sleep(0.05)


async def chaos(offset: int, run_dir: Path, base: str, args: argparse.Namespace,
                load: Load) -> list[Kill]:
    """Kill random targets, waiting for recovery and a pause between kills."""
    rng = random.Random(args.seed)
    kills: list[Kill] = []
    for number in range(1, args.kills + 1):
        current = await asyncio.to_thread(status, offset, run_dir)
        target = rng.choice(TARGETS)
        pid = pids(current)[target]
        if pid is None:
            print(f"  #{number}: {target} has no pid ({current['stack']}); skipped")
            continue
        kill = Kill(target, pid, time.monotonic())
        os.kill(pid, signal.SIGKILL)
        await wait_recovered(offset, run_dir, kill)
        kills.append(kill)
        kill.requests_failed = len([r for r in load.requests if not r.ok and r.ended >= kill.at])
        shown = f"{kill.recovered:.2f}s" if kill.recovered is not None else "NOT RECOVERED"
        print(f"  #{number:2d} kill -9 {target:<11} pid {pid:<7} recovered in {shown}; "
              f"requests failed since: {kill.requests_failed}", flush=True)
        await asyncio.sleep(args.pause)
    return kills


def marked(run_dir: Path) -> list[int]:
    """Live processes carrying the stack's run dir in their environment (not by name)."""
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.Error, OSError):
            continue
        if str(run_dir) in (env.get("OLLAMAMAX_RUN_DIR"), env.get("OLLAMAMAX_SUPERVISOR")):
            found.append(proc.pid)
    return found


def in_flight_on_killed(request: Request, kills: list[Kill]) -> bool:
    """Whether a process on the request's path was killed while it was in flight."""
    return any(k.target in ON_PATH and request.started <= k.at <= (request.ended or k.at)
               for k in kills)


async def run(args: argparse.Namespace) -> int:
    registry = load_registry(REGISTRY)
    offset = free_offset([p for s in registry.services.values() for p in s.port_map.values()])
    registry = load_registry(REGISTRY, offset=offset)
    run_dir = Path(tempfile.mkdtemp(prefix="ollamamax-chaos-")) / "run"
    base = registry.url(registry.services["gateway"])
    ollama_port = registry.services["ollama"].primary_port
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port",
                             str(ollama_port), "--models", "llama3.2", "--token-delay", "0.005"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"OLLAMA_NODES": f"http://127.0.0.1:{ollama_port}", "OLLAMAMAX_HEALTH_INTERVAL": "0.5"}
    os.environ.update(env)  # every `up -d` of this run, also after a supervisord kill
    print(f"chaos: stack at offset {offset}, run dir {run_dir}, seed {args.seed}")
    try:
        while bindable("127.0.0.1", ollama_port):
            await asyncio.sleep(0.05)
        started = ollamamax(offset, run_dir, "up", "-d")
        if started.returncode != 0:
            print(started.stdout + started.stderr)
            return 1
        first = {s["name"]: s for s in json.loads(
            ollamamax(offset, run_dir, "status", "--json").stdout)["services"]}
        own_ready = {n: (first[n].get("ready_ms") or 0) / 1000 for n in first}
        load = Load()
        workers = [asyncio.create_task(client_loop(load, base, stream=False))
                   for _ in range(args.concurrency)]
        workers += [asyncio.create_task(client_loop(load, base, stream=True))
                    for _ in range(args.streams)]
        await asyncio.sleep(3.0)  # warm-up: first connections, first model load
        calm_start = time.monotonic()
        await asyncio.sleep(args.calm)
        calm = [r for r in load.requests if r.ok and r.ended >= calm_start]
        calm_rps = len(calm) / args.calm
        chaos_start = time.monotonic()
        kills = await chaos(offset, run_dir, base, args, load)
        chaos_seconds = time.monotonic() - chaos_start
        load.running = False
        await asyncio.gather(*workers, return_exceptions=True)
        report(load, kills, calm_rps, chaos_start, chaos_seconds, own_ready)
        watcher_cpu(status(offset, run_dir))
    finally:
        down = ollamamax(offset, run_dir, "down", "--timeout", "5")
        fake.terminate()
        fake.wait(10)
    left = marked(run_dir)
    bound = [p for s in registry.managed for p in s.port_map.values()
             if not bindable(registry.bind_host(s), p)]
    print(f"down: exit {down.returncode}; processes left {len(left)}; ports left bound "
          f"{len(bound)}{' ' + str(bound) if bound else ''}")
    return 0 if not left and not bound and down.returncode == 0 else 1


def watcher_cpu(current: dict[str, Any]) -> None:
    """The current watcher's CPU use over its life, against one core."""
    pid = current["watcher"]["pid"]
    if pid is None:
        return
    proc = psutil.Process(pid)
    times, life = proc.cpu_times(), time.time() - proc.create_time()
    print(f"watcher CPU: {100 * (times.user + times.system) / life:.1f}% of a core over its "
          f"{life:.0f}s life")


def outage(kill: Kill, requests: list[Request], until: float) -> float:
    """Seconds from a kill to the last failed request before `until` (0: nobody noticed)."""
    last = [r.ended for r in requests if not r.ok and kill.at <= r.ended <= until]
    return max(last) - kill.at if last else 0.0


def report(load: Load, kills: list[Kill], calm_rps: float, chaos_start: float,
           chaos_seconds: float, own_ready: dict[str, float]) -> None:
    """The figures: failures, recovery per kind of target, throughput."""
    during = [r for r in load.requests if r.started >= chaos_start]
    failed = [r for r in during if not r.ok]
    beyond = [r for r in failed if not in_flight_on_killed(r, kills)]
    ok_rps = len([r for r in during if r.ok]) / chaos_seconds
    print(f"requests: {len(during)} under chaos, failed {len(failed)} "
          f"({100 * len(failed) / max(1, len(during)):.2f}%); excluding those in flight on a "
          f"killed process: {len(beyond)} ({100 * len(beyond) / max(1, len(during)):.2f}%)")
    kinds: dict[str, int] = {}
    for request in failed:
        kinds[request.error] = kinds.get(request.error, 0) + 1
    print(f"failures by kind: {kinds}")
    print(f"throughput under chaos / calm: {ok_rps:.1f} / {calm_rps:.1f} req/s = "
          f"{ok_rps / calm_rps if calm_rps else 0:.2f}")
    print("recovery (kill -9 -> status up with a new pid), per target:")
    for target in TARGETS:
        times = [k.recovered for k in kills if k.target == target and k.recovered is not None]
        lost = len([k for k in kills if k.target == target and k.recovered is None])
        if not times and not lost:
            continue
        baseline = own_ready.get(target)
        ratio = (f"; median / its own start-to-ready ({baseline:.2f}s) = "
                 f"{statistics.median(times) / baseline:.1f}") if baseline and times else ""
        print(f"  {target:<11} kills {len(times) + lost:2d}  median "
              f"{statistics.median(times) if times else float('nan'):.2f}s  max "
              f"{max(times) if times else float('nan'):.2f}s"
              f"{'  NOT RECOVERED ' + str(lost) if lost else ''}{ratio}")
    every = [k.recovered for k in kills if k.recovered is not None]
    if every:
        print(f"  all         kills {len(kills):2d}  median {statistics.median(every):.2f}s  "
              f"max {max(every):.2f}s")
    print("client-visible outage (kill -> last failed request), per target on the path:")
    ends = [k.at for k in kills[1:]] + [chaos_start + chaos_seconds]
    for target in sorted(ON_PATH):
        seen = [outage(k, load.requests, end) for k, end in zip(kills, ends, strict=True)
                if k.target == target]
        if seen:
            print(f"  {target:<11} kills {len(seen):2d}  median {statistics.median(seen):.2f}s  "
                  f"max {max(seen):.2f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--streams", type=int, default=2, help="streaming chats at a time")
    parser.add_argument("--calm", type=float, default=10.0,
                        help="seconds of calm load (the baseline) before the chaos")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
