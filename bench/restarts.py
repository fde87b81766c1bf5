"""Benchmark held sockets: clients dropped by kill -9, restart and reload; throughput by workers.

A supervised stack (gateway and inference on held sockets, tests/fixtures/stacks/held) in
front of a fake Ollama. Under load through the gateway (the openai client: non-streaming
chats at concurrency 16, 20 streaming chats kept open, no retries) it prints, for
  20 x kill -9 of the gateway, 5 x `restart gateway`, and `reload` of a changed gateway env:
requests refused, failed, broken streams, and (kills only) failed because they were in flight
on the killed process. Then gateway throughput (wrk, zero token delay) with `workers` 1 and 2,
as a ratio to the fake node answering directly, interleaved and reported as medians.
Run: .venv/bin/python bench/restarts.py [--kills 20] [--restarts 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import CHAT, OPENAI_CHAT, Loader  # noqa: E402
from ollamamax_stack.hostports import listening  # noqa: E402
from tests.chat_load import ChatLoad  # noqa: E402
from tests.fixtures.stacks.harness import STACKS  # noqa: E402
from tests.integration.test_held_sockets import HeldStack  # noqa: E402

FAST = {"OLLAMAMAX_HEALTH_INTERVAL": "0.2", "OLLAMAMAX_DRAIN_TIMEOUT": "10"}


def start_fake(port: int, token_delay: str) -> subprocess.Popen[bytes]:
    """A fake Ollama on `port`."""
    return subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", str(port),
                             "--token-delay", token_delay], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_back(stack: HeldStack, old: int) -> None:
    """Until a new gateway process serves and the stack calls it ready."""
    deadline = time.monotonic() + 60
    while not (stack.ready_state() and stack.gateway() and old not in stack.gateway().values()):
        if time.monotonic() > deadline:
            raise SystemExit("the gateway did not come back within 60 s")
        time.sleep(0.05)


def clients(stack: HeldStack, kills: int, restarts: int) -> None:
    """Refused and failed requests under kill -9, restart and reload."""
    url = stack.registry.url(stack.registry.services["gateway"])
    with ChatLoad(url) as load:
        load.wait_completed(30)
        recovery = []
        for _ in range(kills):
            (pid,) = stack.gateway().values()
            started = time.monotonic()
            load.kill(pid)
            wait_back(stack, pid)
            recovery.append(time.monotonic() - started)
            load.wait_completed(10)
    print(f"  {kills} x kill -9:     {load.tally().line()}")
    print(f"    kill -9 -> new process ready: median {statistics.median(recovery):.2f} s "
          f"(connections meanwhile wait in the backlog)")
    with ChatLoad(url) as load:
        load.wait_completed(30)
        for _ in range(restarts):
            done = stack.cli("restart", "gateway")
            if done.returncode != 0:
                raise SystemExit(done.stdout + done.stderr)
            load.wait_completed(10)
    print(f"  {restarts} x restart:      {load.tally().line()}")
    with ChatLoad(url) as load:
        load.wait_completed(30)
        stack.edit('command = "ollamamax serve gateway"',
                   'command = "ollamamax serve gateway"\nenv = { BENCH = "1" }')
        done = stack.cli("reload")
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        load.wait_completed(10)
    print(f"  reload (env):     {load.tally().line()}")


async def throughput(stack: HeldStack, node_url: str, folder: Path, seconds: float,
                     repeats: int) -> None:
    """Gateway requests/s with workers 1 and 2 against the node answering directly."""
    gateway = stack.registry.url(stack.registry.services["gateway"]) + "/v1/chat/completions"
    direct = node_url + "/api/chat"
    rps: dict[str, list[float]] = {"direct": [], "workers 1": [], "workers 2": []}
    async with aiohttp.ClientSession() as session:
        loader = Loader(folder, session, use_wrk=True)
        for workers in (1, 2):
            if workers == 2:
                stack.edit("workers = 1\n", "workers = 2\n")
                done = stack.cli("reload")
                if done.returncode != 0:
                    raise SystemExit(done.stdout + done.stderr)
            for _ in range(repeats):
                rps["direct"].append((await loader.run(direct, CHAT, seconds, 16))[1])
                rps[f"workers {workers}"].append(
                    (await loader.run(gateway, OPENAI_CHAT, seconds, 16))[1])
    base = statistics.median(rps["direct"])
    print(f"  gateway throughput (wrk, 16 connections, {repeats} x {seconds:g} s, medians):")
    for name, values in rps.items():
        value = statistics.median(values)
        print(f"    {name:<10} {value:8.0f} req/s  {value / base:5.2f} x direct")
    one, two = statistics.median(rps["workers 1"]), statistics.median(rps["workers 2"])
    print(f"    workers 2 / workers 1: {two / one:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ollamamax-restarts-"))
    config = folder / "ports.toml"
    config.write_text((STACKS / "held" / "ports.toml").read_text().replace(
        'root = "../../../.."', f'root = "{ROOT}"').replace(
        "restart = { limit", "workers = 1\nrestart = { limit"))
    stack = HeldStack("held", folder / "run", config)
    node = stack.registry.services["ollama"].primary_port
    fake = start_fake(node, "0.08")
    try:
        done = stack.cli("up", "-d", env=FAST)
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        print("held sockets under load (openai client: 16 concurrent chats + 20 open streams, "
              "no retries):")
        clients(stack, args.kills, args.restarts)
        fake.terminate()
        fake.wait(10)
        fake = start_fake(node, "0")
        while not listening("127.0.0.1", node):
            time.sleep(0.05)
        time.sleep(1.0)  # inference's health check sees the node again
        asyncio.run(throughput(stack, f"http://127.0.0.1:{node}", folder, args.seconds,
                               args.repeats))
    finally:
        stack.cleanup()
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
