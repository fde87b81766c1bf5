"""Gateway CPU per request, this checkout against a baseline checkout, in the same run.

Both stacks (inference + gateway) run side by side on free offsets in front of the same fake
Ollama node; `wrk` loads the plain chat path of each gateway in turn (interleaved repeats,
whole and streamed answers), and the gateways' CPU seconds per 1,000 requests are compared.
The baseline runs from its own directory with its own interpreter, e.g. the main checkout:
Run: .venv/bin/python -m bench.gateway_baseline --baseline /work/main
     [--baseline-python /work/main/.venv/bin/python] [--seconds 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.gateway import lua_script, wrk  # noqa: E402
from tests.integration.services_procs import (  # noqa: E402
    FAST,
    ROOT,
    Proc,
    fake_nodes,
    registry_ports,
    wait_http,
)
from tests.portbase import free_offset  # noqa: E402

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
BODIES = {"whole": CHAT, "streamed": {**CHAT, "stream": True}}


def url_of(checkout: Path, offset: int, service: str) -> str:
    from ollamamax_stack.registry import load_registry

    registry = load_registry(checkout / "config" / "ports.toml", offset=offset)
    return registry.url(registry.services[service])


@contextlib.contextmanager
def stack(checkout: Path, python: str, node_url: str, run_dir: Path,
          taken: list[int], extra: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """inference + gateway of `checkout` (`extra` environment); yields the gateway's URL and
    pid."""
    offset = free_offset([p + o for p in registry_ports() for o in [0, *taken]])
    taken.append(offset)
    env = {**os.environ, **FAST, "OLLAMA_NODES": node_url, **(extra or {})}
    procs = []
    try:
        for service in ("inference", "gateway"):
            log = run_dir / f"{service}.log"
            run_dir.mkdir(parents=True, exist_ok=True)
            argv = [python, "-m", "ollamamax_stack", "--config",
                    str(checkout / "config" / "ports.toml"), "--offset", str(offset),
                    "--run-dir", str(run_dir), "serve", service]
            with log.open("ab") as out:
                popen = subprocess.Popen(argv, cwd=checkout, stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
            proc = Proc(f"{checkout.name} {service}", popen, log)
            procs.append(proc)
            wait_http(proc, url_of(checkout, offset, service) + "/health/ready")
        yield url_of(checkout, offset, "gateway"), procs[-1].popen.pid
    finally:
        for proc in reversed(procs):
            proc.stop()


def cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


Figures = dict[str, dict[str, list[float]]]  # body kind -> gateway name -> one figure a run


def interleaved(gateways: dict[str, tuple[str, int]], folder: Path, seconds: float,
                repeats: int, connections: int) -> tuple[Figures, Figures]:
    """wrk against each gateway (name -> (url, pid)) for each body, repeats interleaved and
    who goes first alternating: (gateway CPU microseconds per request, requests/s) per run."""
    per_k: Figures = {kind: {name: [] for name in gateways} for kind in BODIES}
    rates: Figures = {kind: {name: [] for name in gateways} for kind in BODIES}
    for kind, body in BODIES.items():
        script = lua_script(folder, body)
        for url, _ in gateways.values():  # warm up
            wrk(url + "/v1/chat/completions", script, 1, connections)
        for repeat in range(repeats):
            order = list(gateways.items())
            for name, (url, pid) in order[::-1] if repeat % 2 else order:
                before = cpu(pid)
                requests, rps, _ = wrk(url + "/v1/chat/completions", script, seconds,
                                       connections)
                per_k[kind][name].append(1e6 * (cpu(pid) - before) / requests)
                rates[kind][name].append(rps)
    return per_k, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline checkout")
    parser.add_argument("--baseline-python", default=None,
                        help="its interpreter (default: <baseline>/.venv/bin/python)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    base_python = args.baseline_python or str(args.baseline / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        node = fake_nodes(folder, [("fast", "llama3.2", [])])[0].start()
        taken: list[int] = []
        try:
            with stack(ROOT, sys.executable, node.url, folder / "this", taken) as this, \
                    stack(args.baseline.resolve(), base_python, node.url, folder / "base",
                          taken) as base:
                per_k, _ = interleaved({"this": this, "baseline": base}, folder, args.seconds,
                                       args.repeats, args.connections)
        finally:
            assert node.proc is not None
            node.proc.stop()
    print(f"gateway CPU ms per 1,000 plain chat requests (wrk, {args.connections} "
          f"connections, {args.seconds:g}s runs, {args.repeats} interleaved repeats, medians)")
    for kind, figures in per_k.items():
        this_ms = statistics.median(figures["this"])
        base_ms = statistics.median(figures["baseline"])
        print(f"  {kind:<9} this {this_ms:7.1f}   baseline {base_ms:7.1f}   "
              f"ratio {this_ms / base_ms:.3f}   (runs: this "
              f"{' '.join(f'{v:.0f}' for v in figures['this'])}; baseline "
              f"{' '.join(f'{v:.0f}' for v in figures['baseline'])})")


if __name__ == "__main__":
    main()
