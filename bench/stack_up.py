"""Benchmark `ollamamax up -d` against its critical path, honcho, and itself at 60 services.

A synthetic stack: N services in 4 dependency layers, each an HTTP fixture program
ready after a known delay (tests/fixtures/programs/service.py). In one run it measures
  (a) `ollamamax up -d` from invocation to return with everything ready;
  (b) the critical path: the longest dependency chain's sum of each service's own
      start-to-ready time, measured by starting each service alone;
  (c) `honcho start` on the same commands (no ordering) until an outside prober sees all ready;
  (d) `ollamamax down` until every port is free;
and the restart latency (kill -9 -> ready again) against the service's own start-to-ready.
Prints (a)/(b) (target <= 1.15) and (a)/(c), for 12 and then 60 services.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ollamamax_stack.hostports import bindable  # noqa: E402
from ollamamax_stack.supervise.probes import probe_http  # noqa: E402
from tests.portbase import free_offset  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
BIN = Path(sys.executable).parent
# Each service's own delay before it reports ready: what real services take (a Go or Node
# server with its first connections), against which ollamamax's fixed cost (interpreter
# start, supervisord, table) shows as a ratio. (a)-(b) is printed too.
DELAYS = (1.0, 1.5, 2.0)
LAYERS = 4
PROBE_PERIOD = 0.01


def build(directory: Path, count: int, base: int) -> dict[str, tuple[int, float, list[str]]]:
    """Write ports.toml + Procfile for `count` services; name -> (port, delay, depends_on)."""
    per_layer = count // LAYERS
    services: dict[str, tuple[int, float, list[str]]] = {}
    layers: list[list[str]] = []
    for layer in range(LAYERS):
        names = []
        for index in range(per_layer):
            name = f"s{layer}-{index}"
            # each service needs up to three of the previous layer (all of it at 12 services)
            previous = layers[-1] if layers else []
            deps = [previous[(index + k) % len(previous)] for k in range(min(3, len(previous)))]
            delay = DELAYS[(index + layer) % len(DELAYS)]
            services[name] = (base + len(services), delay, sorted(set(deps)))
            names.append(name)
        layers.append(names)
    toml = [f'[stack]\nname = "bench"\nroot = "{FIXTURES}"\nrun_dir = "{directory}/run"\n'
            f'procfile = "{directory}/Procfile"\n']
    procfile = []
    for name, (port, delay, deps) in services.items():
        toml.append(f'[services.{name}]\nport = {port}\ndepends_on = {deps!r}\n'
                    'readiness = { http = "/ready", timeout = 60 }\n'
                    'restart = { limit = 5, backoff = 0.05, max_backoff = 1, stable = 5 }\n')
        procfile.append(f"{name}: python3 programs/service.py --delay {delay}")
    (directory / "ports.toml").write_text("\n".join(toml).replace("'", '"'))
    (directory / "Procfile").write_text("\n".join(procfile) + "\n")
    return services


def env_path() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


async def _until_ready(ports: list[int], started: float, timeout: float = 120) -> dict[int, float]:
    """Poll every port's /ready; the seconds from `started` to each first 2xx."""
    seen: dict[int, float] = {}

    async def one(port: int) -> None:
        while time.monotonic() - started < timeout:
            if await probe_http("127.0.0.1", port, "/ready", 1.0):
                seen[port] = time.monotonic() - started
                return
            await asyncio.sleep(PROBE_PERIOD)

    await asyncio.gather(*(one(p) for p in ports))
    return seen


def alone(command: list[str], port: int) -> float:
    """One service started by itself: seconds from spawn to its first ready answer."""
    env = {**env_path(), "PORT": str(port), "HOST": "127.0.0.1", "OLLAMAMAX_SERVICE": "alone"}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=FIXTURES, env=env, stdout=subprocess.DEVNULL)
    try:
        return asyncio.run(_until_ready([port], started))[port]
    finally:
        process.kill()
        process.wait()


def critical_path(services: dict[str, tuple[int, float, list[str]]],
                  own: dict[str, float]) -> float:
    """The longest dependency chain, each service weighted by its own start-to-ready time."""
    finish: dict[str, float] = {}
    for name, (_, _, deps) in services.items():  # written layer by layer: deps come first
        finish[name] = own[name] + max((finish[d] for d in deps), default=0.0)
    return max(finish.values())


def cli(directory: Path, offset: int, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    command = [str(BIN / "ollamamax"), "--config", str(directory / "ports.toml"),
               "--offset", str(offset), *args]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env_path())
    return time.monotonic() - started, done


def wait_free(ports: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(not bindable("127.0.0.1", p) for p in ports):
        if time.monotonic() > deadline:
            raise SystemExit("ports still busy after the benchmark step")
        time.sleep(0.02)


def honcho(directory: Path, services: dict[str, tuple[int, float, list[str]]],
           offset: int) -> float:
    """`honcho start` of the same commands (no ordering) until every service answers ready."""
    lines = [f"{name}: PORT={port + offset} OLLAMAMAX_SERVICE={name} exec python3 "
             f"programs/service.py --delay {delay}" for name, (port, delay, _) in services.items()]
    procfile = directory / "Procfile.honcho"
    procfile.write_text("\n".join(lines) + "\n")
    ports = [port + offset for port, _, _ in services.values()]
    started = time.monotonic()
    process = subprocess.Popen([str(BIN / "honcho"), "-f", str(procfile), "-d", str(FIXTURES),
                                "start"], env=env_path(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=FIXTURES)
    try:
        seen = asyncio.run(_until_ready(ports, started))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    wait_free(ports)
    return max(seen.values())


def stack_cpu(directory: Path) -> dict[str, float]:
    """CPU seconds used so far by supervisord and by the services (the fixture programs)."""
    import json

    import psutil

    state = json.loads((directory / "run" / "state.json").read_text())
    used = {"supervisord": 0.0, "services": 0.0}
    pids = [("supervisord", state.get("supervisord_pid"))]
    pids += [("services", entry.get("pid")) for entry in state["services"].values()]
    for who, pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except (psutil.Error, TypeError, ValueError):
            continue
        used[who] += times.user + times.system
    return used


def restart_latency(directory: Path, offset: int, port: int) -> float:
    """kill -9 a running service; seconds until it answers ready again from a new process."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/env", timeout=5) as response:
        import json

        pid = json.loads(response.read())["pid"]
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as reply:
                if reply.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(PROBE_PERIOD)


def run(count: int, own_by_delay: dict[float, float] | None) -> dict[float, float]:
    with tempfile.TemporaryDirectory(prefix="ollamamax-bench-") as tmp:
        directory = Path(tmp)
        services = build(directory, count, 22000)
        offset = free_offset([p for p, _, _ in services.values()])
        ports = [p + offset for p, _, _ in services.values()]
        if own_by_delay is None:  # (b): every service alone, one after another
            own = {name: alone(["python3", "programs/service.py", "--delay", str(delay)],
                               port + offset) for name, (port, delay, _) in services.items()}
            by_delay: dict[float, list[float]] = {}
            for name, (_, delay, _) in services.items():
                by_delay.setdefault(delay, []).append(own[name])
            own_by_delay = {d: statistics.median(v) for d, v in by_delay.items()}
            note = "each service started alone"
        else:  # at 60 the same commands: the medians measured alone at 12 stand in
            own = {name: own_by_delay[delay] for name, (_, delay, _) in services.items()}
            note = "per-delay medians of the services started alone at 12"
        b = critical_path(services, own)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        a, done = cli(directory, offset, "up", "-d")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"up -d failed: {done.stdout}{done.stderr}")
        cpu = {"ollamamax up": (after.ru_utime - before.ru_utime)
               + (after.ru_stime - before.ru_stime), **stack_cpu(directory)}
        first = next(iter(services.values()))
        restart = restart_latency(directory, offset, first[0] + offset)
        restart_own = own_by_delay[first[1]]
        d, done = cli(directory, offset, "down")
        wait_free(ports)
        d_checked = d
        c = honcho(directory, services, offset)
        print(f"\n== {count} services in {LAYERS} layers (delays {', '.join(map(str, DELAYS))} s)")
        print(f"(a) ollamamax up -d, invocation to all ready : {a:6.2f} s")
        print(f"(b) critical path ({note}): {b:6.2f} s")
        print(f"(c) honcho start, no ordering, until all ready: {c:6.2f} s")
        print(f"(d) ollamamax down until every port is free   : {d_checked:6.2f} s")
        print(f"(a)/(b) = {a / b:.3f}   (target <= 1.15; (a)-(b) = {a - b:.2f} s)")
        print("CPU seconds while (a) ran: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
              + f"; {os.cpu_count()} cores x {a:.2f} s = {(os.cpu_count() or 1) * a:.1f}")
        print(f"(a)/(c) = {a / c:.3f}   (honcho starts everything at once and orders nothing)")
        print(f"restart after kill -9: {restart:.3f} s vs its own start-to-ready "
              f"{restart_own:.3f} s (ratio {restart / restart_own:.2f}; backoff 0.05 s)")
        return own_by_delay


def main() -> None:
    started = time.monotonic()
    own = run(12, None)
    run(60, own)
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
