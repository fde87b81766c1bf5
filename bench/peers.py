"""The stack beside its peers, in one run: direct, nginx, ollamamax (gateway -> node), LiteLLM.

Every system serves the same two fake Ollama nodes (tests/fakes/ollama.py): `fast` answers at
once (non-streaming load), `slow` writes one token every --token-delay seconds (streams).
Rounds are interleaved (direct, nginx, stack, litellm, direct, ...) and each figure is the
median over rounds; ratios are to direct in the same run. Load comes from wrk (a separate C
process); CPU is read per process with psutil before and after each load run, so CPU ms per
request holds even when the machine is shared. Prints one markdown table and the versions.

- nginx (Debian): one worker, `proxy_pass` to a keep-alive upstream, `proxy_buffering off`.
- ollamamax: inference (control plane) and gateway, auth on (one API key), defaults else.
- LiteLLM: `litellm[proxy]` in its own virtualenv under .bench/ (installed on first use),
  two workers, `ollama_chat/` provider, no database, telemetry off, local cost map, a
  master key (it refuses to start without one).

Run: .venv/bin/python bench/peers.py [--rounds 3] [--seconds 3] [--token-delay 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.integration.services_procs import (  # noqa: E402
    FakeNode,
    Proc,
    Stack,
    fake_nodes,
    registry_ports,
    spawn,
)
from tests.portbase import free_offset, free_port  # noqa: E402

LITELLM = "litellm[proxy]==1.108.7"
LITELLM_VENV = ROOT / ".bench" / "litellm"
TOKENS = 64  # tokens per streamed answer
KEY = "sk-bench-" + os.urandom(12).hex()  # the API key of the systems that check one
PROMPT = " ".join(f"w{i}" for i in range(TOKENS))  # the fake's reply is longer than TOKENS
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
SYSTEMS = ("direct", "nginx", "ollamamax", "litellm")
LABELS = {"direct": "direct (fake Ollama)", "nginx": "nginx, one plain hop",
          "ollamamax": "**ollamamax**: gateway → node",
          "litellm": "LiteLLM proxy, 2 workers (`ollama_chat/`)"}


def ollama_bodies(model_fast: str, model_slow: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ollama `/api/chat` bodies: one whole answer, one 64-token stream."""
    return ({"model": model_fast, "stream": False, "messages": [{"role": "user",
                                                                 "content": "hi"}]},
            {"model": model_slow, "stream": True, "options": {"num_predict": TOKENS},
             "messages": [{"role": "user", "content": PROMPT}]})


def openai_bodies(model_fast: str, model_slow: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenAI `/v1/chat/completions` bodies: one whole answer, one 64-token stream."""
    return ({"model": model_fast, "messages": [{"role": "user", "content": "hi"}]},
            {"model": model_slow, "stream": True, "max_tokens": TOKENS,
             "messages": [{"role": "user", "content": PROMPT}]})


@dataclass
class System:
    """One way to reach the nodes: its URLs, bodies, processes and start-up time."""

    name: str
    whole_url: str
    stream_url: str
    whole_body: dict[str, Any]
    stream_body: dict[str, Any]
    sse: bool
    pids: list[int]
    started_in: float
    versions: dict[str, str] = field(default_factory=dict)
    key: str | None = None  # a bearer API key, where the system requires one

    @property
    def headers(self) -> dict[str, str]:
        """The request headers the system needs."""
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def processes(self) -> dict[str, psutil.Process]:
        """Every process of the system (children included), by a readable name."""
        found: dict[str, psutil.Process] = {}
        for pid in self.pids:
            parent = psutil.Process(pid)
            for proc in [parent, *parent.children(recursive=True)]:
                found[f"{self.role(proc)}[{proc.pid}]"] = proc
        return found

    def role(self, proc: psutil.Process) -> str:
        """A short name for a process of this system."""
        argv = proc.cmdline()
        if "tests.fakes.ollama" in argv and "--name" in argv:
            return "node " + argv[argv.index("--name") + 1]
        line = " ".join(argv)
        if "multiprocessing.spawn" in line:
            return f"{self.name} worker"
        if "multiprocessing.resource_tracker" in line:
            return f"{self.name} tracker"
        for word in ("gateway", "inference", "nginx: worker", "nginx: master", "litellm"):
            if word in line:
                return word.replace("nginx: ", "nginx ")
        return proc.name()


@dataclass
class Figures:
    """One round of one system."""

    rps: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    ttft: float = 0.0
    tokens: float = 0.0  # tokens/s at c64
    token_cpu: float = 0.0  # CPU µs per streamed token, all processes of the system
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU ms per request
    rss: float = 0.0  # MiB, all processes


# --- load -------------------------------------------------------------------------------


def lua(folder: Path, body: dict[str, Any], auth: str | None = None) -> Path:
    """A wrk script that POSTs `body` as JSON."""
    text = json.dumps(body)
    path = folder / f"post-{abs(hash((text, auth)))}.lua"
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"',
             f"wrk.body = [[{text}]]"]
    if auth:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {auth}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def seconds_of(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"wrk printed an unknown duration {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass
class Load:
    """What one wrk run saw."""

    requests: int
    rps: float
    p50: float
    p99: float


def wrk(url: str, script: Path, seconds: float, connections: int) -> Load:
    """Run wrk; a non-2xx answer or a socket error stops the bench with wrk's output."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "30s", "-s", str(script), url]
    text = subprocess.run(argv, capture_output=True, text=True, check=True,
                          timeout=seconds + 60).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", text) or "Socket errors" in text:
        raise RuntimeError(f"wrk against {url} saw failures:\n{text}")

    def find(pattern: str) -> str:
        match = re.search(pattern, text)
        if not match:
            raise RuntimeError(f"wrk printed no {pattern!r}:\n{text}")
        return match.group(1)

    return Load(int(find(r"(\d+) requests in")), float(find(r"Requests/sec:\s+([\d.]+)")),
                seconds_of(find(r"\s50%\s+(\S+)")), seconds_of(find(r"\s99%\s+(\S+)")))


def cpu_of(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """User + system CPU seconds of each process so far."""
    out = {}
    for name, proc in procs.items():
        times = proc.cpu_times()
        out[name] = times.user + times.system
    return out


def token_line(sse: bool) -> Callable[[bytes], bool]:
    """Whether a line of the stream carries a token."""
    def ndjson(line: bytes) -> bool:
        return bool(line.strip()) and bool(json.loads(line).get("message", {}).get("content"))

    def events(line: bytes) -> bool:
        if not line.startswith(b"data: {"):
            return False
        choices = json.loads(line[6:]).get("choices") or [{}]
        return bool((choices[0].get("delta") or {}).get("content"))

    return events if sse else ndjson


async def stream_tokens(session: aiohttp.ClientSession, system: System) -> tuple[float, int]:
    """Seconds to the first token of one streamed answer, and its token count."""
    is_token = token_line(system.sse)
    started = time.perf_counter()
    first, count = 0.0, 0
    async with session.post(system.stream_url, json=system.stream_body,
                            headers=system.headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{system.name}: HTTP {resp.status}: {await resp.text()}")
        async for line in resp.content:
            if is_token(line):
                count += 1
                first = first or time.perf_counter() - started
    return first, count


async def ttft(system: System, samples: int) -> float:
    """Median time to first token over `samples` sequential streams."""
    async with aiohttp.ClientSession() as session:
        await stream_tokens(session, system)
        return statistics.median([(await stream_tokens(session, system))[0]
                                  for _ in range(samples)])


def measure(system: System, folder: Path, args: argparse.Namespace) -> Figures:
    """One round of one system: c32 whole answers with CPU, c1 latency, TTFT, c64 streams."""
    procs = system.processes()
    whole = lua(folder, system.whole_body, system.key)
    before = cpu_of(procs)
    load = wrk(system.whole_url, whole, args.seconds, 32)
    after = cpu_of(procs)
    cpu = {n: 1e3 * (after[n] - before[n]) / load.requests for n in procs}
    # A slow system still works off the c32 backlog: one answer first, so c1 sees it idle.
    first_answer(system.whole_url, system.whole_body, time.perf_counter(), system.name,
                 key=system.key)
    single = wrk(system.whole_url, whole, max(2.0, args.seconds * 2 / 3), 1)
    first = asyncio.run(ttft(system, args.ttft_samples))
    before = cpu_of(procs)
    streams = wrk(system.stream_url, lua(folder, system.stream_body, system.key),
                  args.stream_seconds, 64)
    after = cpu_of(procs)
    token_cpu = 1e6 * sum(after[n] - before[n] for n in procs) / (streams.requests * TOKENS)
    rss = sum(p.memory_info().rss for p in procs.values()) / 2**20
    return Figures(load.rps, single.p50, single.p99, first, streams.rps * TOKENS, token_cpu,
                   cpu, rss)


# --- the systems ------------------------------------------------------------------------


def first_answer(url: str, body: dict[str, Any], started: float, what: str,
                 timeout: float = 120, key: str | None = None) -> float:
    """Seconds from `started` until `url` answers `body` with 200."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                if resp.status == 200:
                    resp.read()
                    return time.perf_counter() - started
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{what} gave no answer at {url} within {timeout:g}s")


@contextmanager
def direct(fast: FakeNode, slow: FakeNode, started_in: float) -> Iterator[System]:
    whole, stream = ollama_bodies("llama3.2", "slowpoke")
    assert fast.proc is not None and slow.proc is not None
    yield System("direct", fast.url + "/api/chat", slow.url + "/api/chat", whole, stream,
                 False, [fast.proc.popen.pid, slow.proc.popen.pid], started_in)


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
  upstream fast {{ server 127.0.0.1:{fast}; keepalive 64; }}
  upstream slow {{ server 127.0.0.1:{slow}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://fast; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_buffering off; }}
  }}
  server {{
    listen 127.0.0.1:{port2};
    location / {{ proxy_pass http://slow; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_buffering off; }}
  }}
}}
"""


@contextmanager
def nginx(fast: FakeNode, slow: FakeNode, tmp: Path) -> Iterator[System]:
    folder = tmp / "nginx"
    folder.mkdir()
    port, port2 = free_port(), free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=folder, fast=fast.port, slow=slow.port, port=port,
                                      port2=port2))
    whole, stream = ollama_bodies("llama3.2", "slowpoke")
    started = time.perf_counter()
    proc = spawn("nginx", ["nginx", "-e", str(folder / "nginx-error.log"), "-c", str(conf),
                           "-p", str(folder)], folder / "nginx.log")
    try:
        url = f"http://127.0.0.1:{port}/api/chat"
        took = first_answer(url, whole, started, "nginx")
        version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
        yield System("nginx", url, f"http://127.0.0.1:{port2}/api/chat", whole, stream, False,
                     [proc.popen.pid], took, {"nginx": version.strip().split("/")[-1]})
    finally:
        proc.stop()


@contextmanager
def ollamamax(fast: FakeNode, slow: FakeNode, tmp: Path) -> Iterator[System]:
    stack = Stack(free_offset(registry_ports()), tmp / "run",
                  {"OLLAMA_NODES": f"{fast.url},{slow.url}", "OLLAMAMAX_API_KEYS": KEY})
    whole, stream = openai_bodies("llama3.2", "slowpoke")
    started = time.perf_counter()
    try:
        stack.start("inference", wait=False)
        stack.start("gateway", wait=False)
        url = stack.url("gateway") + "/v1/chat/completions"
        took = first_answer(url, whole, started, "the gateway", key=KEY)
        yield System("ollamamax", url, url, whole, stream, True,
                     [p.popen.pid for p in stack.procs.values()], took, key=KEY)
    finally:
        stack.stop_all()


LITELLM_CONF = """model_list:
  - model_name: llama3.2
    litellm_params: {{model: ollama_chat/llama3.2, api_base: "{fast}"}}
  - model_name: slowpoke
    litellm_params: {{model: ollama_chat/slowpoke, api_base: "{slow}"}}
litellm_settings:
  telemetry: false
  set_verbose: false
  json_logs: false
general_settings: {{}}
"""


def litellm_ready() -> str | None:
    """None when LiteLLM is installed in its virtualenv, else why it is not."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if binary.exists():
        return None
    LITELLM_VENV.parent.mkdir(exist_ok=True)
    log = LITELLM_VENV.parent / "litellm-install.log"
    with log.open("w") as out:
        made = subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], stdout=out,
                              stderr=subprocess.STDOUT)
        if made.returncode == 0:
            made = subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", LITELLM],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    if made.returncode != 0 or not binary.exists():
        tail = [line for line in log.read_text().splitlines() if "WARNING" not in line][-3:]
        return f"pip install {LITELLM} failed ({'; '.join(tail) or 'no output'}), see {log}"
    return None


@contextmanager
def litellm(fast: FakeNode, slow: FakeNode, tmp: Path) -> Iterator[System]:
    folder = tmp / "litellm"
    folder.mkdir()
    conf = folder / "config.yaml"
    conf.write_text(LITELLM_CONF.format(fast=fast.url, slow=slow.url))
    port = free_port()
    whole, stream = openai_bodies("llama3.2", "slowpoke")
    env = {"LITELLM_MASTER_KEY": KEY, "LITELLM_TELEMETRY": "False",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True",
           "LITELLM_MODE": "PRODUCTION", "NO_DOCS": "True"}
    started = time.perf_counter()
    os.environ.pop("DATABASE_URL", None)  # no database: LiteLLM's plain proxy
    proc = spawn("litellm", [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(conf),
                             "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "2",
                             # on 2 busy cores a worker takes longer than uvicorn's default
                             # 5 s to boot, and is killed and restarted forever
                             "--timeout_worker_healthcheck", "120"], folder / "litellm.log", env,
                 start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        try:
            took = first_answer(url, whole, started, "LiteLLM", timeout=180, key=KEY)
        except RuntimeError:
            raise RuntimeError(f"LiteLLM did not answer; its log:\n{proc.tail()}") from None
        version = subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('litellm'))"],
                                 capture_output=True, text=True).stdout.strip()
        yield System("litellm", url, url, whole, stream, True, [proc.popen.pid], took,
                     {"litellm": version}, key=KEY)
    finally:
        stop_group(proc)


def stop_group(proc: Proc) -> None:
    """Stop a process that runs its own workers: SIGTERM to its group, then wait."""
    import signal

    with suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGTERM)
    try:
        proc.popen.wait(15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(5)


# --- report -----------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Exact versions of what ran."""
    wrk_line = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    out = {"python": platform.python_version(), "kernel": platform.release(),
           "cpu": f"{cpu} × {psutil.cpu_count()}",
           "wrk": (wrk_line.stdout + wrk_line.stderr).split()[1]}
    for package in ("ollamamax-stack", "aiohttp", "orjson", "uvloop", "psutil"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def med(rounds: list[Figures], pick: Callable[[Figures], float]) -> float:
    return statistics.median(pick(r) for r in rounds)


def ceilings(results: dict[str, list[Figures]]) -> str:
    """What the CPU per request allows on this many dedicated cores, as ratios to direct.

    Measured req/s swing with whatever else the shared machine runs; CPU per request does
    not. Every process is one thread, so each caps the rate at 1 / its CPU per request, and
    all of them with the node behind share the cores.
    """
    cores = psutil.cpu_count() or 1

    def per_process(name: str) -> list[float]:
        rounds = results[name]
        return [statistics.median(r.cpu.get(n, 0.0) for r in rounds) for n in rounds[0].cpu]

    node = max(per_process("direct"))  # the fast node: every whole answer's own cost
    direct = min(cores / node, 1 / node)
    parts = []
    for name in results:
        if name == "direct":
            continue
        costs = per_process(name)
        ceiling = min(cores / (node + sum(costs)), 1 / max([node, *costs]))
        parts.append(f"{name} {ceiling / direct:.2f}×")
    return (f"\nCPU ceiling on {cores} dedicated cores without the load generator, from CPU "
            f"per request (node {node:.3f} ms): direct {1000 * direct:.0f} req/s; "
            + ", ".join(parts) + ".")


def report(results: dict[str, list[Figures]], systems: dict[str, System],
           notes: list[str], info: dict[str, str], args: argparse.Namespace) -> None:
    base = results["direct"]
    d_rps, d_p50, d_p99 = med(base, lambda f: f.rps), med(base, lambda f: f.p50), med(
        base, lambda f: f.p99)
    d_ttft, d_tok = med(base, lambda f: f.ttft), med(base, lambda f: f.tokens)
    print(f"\n{len(base)} interleaved rounds, medians; wrk; {args.seconds:g} s per load run, "
          f"{args.stream_seconds:g} s per streaming run; streams: {TOKENS} tokens, "
          f"{args.token_delay * 1e3:g} ms apart; TTFT: median of "
          f"{args.ttft_samples} sequential streams\n")
    print("| path | req/s at c32 (× direct) | p50 at c1 (added) | p99 at c1 (added) | TTFT "
          "(added) | tokens/s at c64 (× direct) | CPU ms per request | CPU µs per streamed token "
          "| RSS | first answer after start |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rounds in results.items():
        rps, p50, p99 = med(rounds, lambda f: f.rps), med(rounds, lambda f: f.p50), med(
            rounds, lambda f: f.p99)
        first, tokens = med(rounds, lambda f: f.ttft), med(rounds, lambda f: f.tokens)
        names = rounds[0].cpu.keys()
        per = {n: statistics.median(r.cpu.get(n, 0.0) for r in rounds) for n in names}
        total = sum(per.values())
        parts = ", ".join(f"{n.split('[')[0]} {v:.3f}" for n, v in per.items())
        rss = med(rounds, lambda f: f.rss)
        token_cpu = med(rounds, lambda f: f.token_cpu)
        if name == "direct":
            cells = [f"{rps:.0f}", f"{p50 * 1e3:.2f} ms", f"{p99 * 1e3:.2f} ms",
                     f"{first * 1e3:.2f} ms", f"{tokens:.0f}"]
        else:
            cells = [f"{rps:.0f} ({rps / d_rps:.3f}×)",
                     f"{p50 * 1e3:.2f} ms (+{(p50 - d_p50) * 1e3:.2f})",
                     f"{p99 * 1e3:.2f} ms (+{(p99 - d_p99) * 1e3:.2f})",
                     f"{first * 1e3:.2f} ms (+{(first - d_ttft) * 1e3:.2f})",
                     f"{tokens:.0f} ({tokens / d_tok:.3f}×)"]
        print(f"| {LABELS[name]} | " + " | ".join(cells) +
              f" | **{total:.3f}** ({parts}) | {token_cpu:.1f} | {rss:.0f} MiB | "
              f"{systems[name].started_in:.2f} s |")
    print("\nCPU ms per request: every process of the system during the c32 whole-answer run "
          "(for direct: the two fake nodes; for the others, their own processes, not the "
          "nodes behind them). CPU µs per streamed token: the same processes during the c64 "
          "streaming run.")
    print(ceilings(results))
    for note in notes:
        print(f"\n{note}")
    merged = dict(info)
    for system in systems.values():
        merged.update(system.versions)
    print("\nversions: " + "; ".join(f"{k} {v}" for k, v in merged.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load run")
    parser.add_argument("--token-delay", type=float, default=0.01,
                        help="seconds between the slow node's tokens")
    parser.add_argument("--stream-seconds", type=float, default=10.0,
                        help="length of each c64 streaming run (many streams per connection)")
    parser.add_argument("--ttft-samples", type=int, default=15)
    parser.add_argument("--only", default=",".join(SYSTEMS),
                        help="comma-separated systems (direct is always measured)")
    args = parser.parse_args()
    wanted = [s for s in SYSTEMS if s == "direct" or s in args.only.split(",")]
    for program in ("wrk", "nginx"):
        if shutil.which(program) is None and (program == "wrk" or "nginx" in wanted):
            raise SystemExit(f"bench/peers.py: {program} is not installed (make system-deps)")
    notes: list[str] = []
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    with tempfile.TemporaryDirectory() as name, ExitStack() as stack:
        tmp = Path(name)
        fast, slow = fake_nodes(tmp, [("fast", "llama3.2", []),
                                      ("slowpoke", "slowpoke",
                                       ["--token-delay", str(args.token_delay)])])
        started = time.perf_counter()
        fast.start()
        direct_took = first_answer(fast.url + "/api/chat", ollama_bodies("llama3.2", "x")[0],
                                   started, "the fake node")
        slow.start()
        stack.callback(lambda: [n.proc.stop() for n in (fast, slow) if n.proc is not None])
        systems = {"direct": stack.enter_context(direct(fast, slow, direct_took))}
        if "nginx" in wanted:
            systems["nginx"] = stack.enter_context(nginx(fast, slow, tmp))
        if "ollamamax" in wanted:
            systems["ollamamax"] = stack.enter_context(ollamamax(fast, slow, tmp))
        if "litellm" in wanted:
            why = litellm_ready()
            if why is None:
                try:
                    systems["litellm"] = stack.enter_context(litellm(fast, slow, tmp))
                except RuntimeError as exc:
                    notes.append(f"LiteLLM left out: {exc}")
            else:
                notes.append(f"LiteLLM left out: {why}")
        for system in systems.values():  # every path answers a whole 64-token stream
            _, count = asyncio.run(_check_stream(system))
            if count != TOKENS:
                raise SystemExit(f"bench/peers.py: {system.name} streamed {count} tokens, "
                                 f"not {TOKENS}")
        for system in systems.values():  # warm up connections and code paths
            wrk(system.whole_url, lua(tmp, system.whole_body, system.key), 1, 32)
        results: dict[str, list[Figures]] = {name: [] for name in systems}
        for index in range(args.rounds):
            for name, system in systems.items():
                results[name].append(measure(system, tmp, args))
            print(f"round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        report(results, systems, notes, versions(), args)


async def _check_stream(system: System) -> tuple[float, int]:
    async with aiohttp.ClientSession() as session:
        return await stream_tokens(session, system)


if __name__ == "__main__":
    main()
