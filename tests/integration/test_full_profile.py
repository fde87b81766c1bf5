"""`--profile full`: real redis, PostgreSQL and Prometheus beside the stack, scraping it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from ollamamax_stack.dependents import UnavailableError
from ollamamax_stack.dependents.binaries import find_program
from ollamamax_stack.ports.host import bindable
from ollamamax_stack.registry import load_registry
from tests.portbase import free_offset
from tests.render_project import ROOT
from tests.system import missing_program

REGISTRY = ROOT / "config" / "ports.toml"
OLLAMAMAX = [sys.executable, "-m", "ollamamax_stack"]


def require(program: str, package: str) -> Path:
    try:
        return find_program(program, package)
    except UnavailableError:
        missing_program(program, package)
        raise


@pytest.fixture
def stack() -> Iterator[tuple[list[str], Path, int]]:
    for program, package in (("redis-server", "redis-server"), ("postgres", "postgresql"),
                             ("prometheus", "prometheus"), ("psql", "postgresql-client")):
        require(program, package)
    registry = load_registry(REGISTRY, profile="full")
    offset = free_offset([p for s in registry.services.values() for p in s.port_map.values()])
    # Not under pytest's 0700 tmp tree: the postgres user must be able to reach its data dir.
    run_dir = Path(tempfile.mkdtemp(prefix="ollamamax-full-"))
    base = [*OLLAMAMAX, "--config", str(REGISTRY), "--offset", str(offset), "--run-dir",
            str(run_dir), "--profile", "full"]
    ollama = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port",
                               str(11434 + offset)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield base, run_dir, offset
    finally:
        subprocess.run([*base, "down"], capture_output=True, check=False, timeout=60)
        ollama.terminate()
        ollama.wait(10)
        shutil.rmtree(run_dir, ignore_errors=True)


def ollamamax(base: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*base, *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=ROOT)


def up(base: list[str]) -> dict[str, dict[str, object]]:
    started = ollamamax(base, "up", "-d")
    # Grafana is external and not here: the stack is at best degraded (exit 1), never failed.
    status = json.loads(ollamamax(base, "status", "--json").stdout)
    services = {s["name"]: s for s in status["services"]}
    assert status["stack"] in ("up", "degraded"), started.stdout + started.stderr
    for name in ("gateway", "hub", "fallback", "inference", "redis", "postgres", "prometheus"):
        assert services[name]["ready"] is True, (name, services[name], started.stderr)
    return services


def psql(port: int, sql: str) -> str:
    result = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                             "-d", "postgres", "-tAc", sql], capture_output=True, text=True,
                            check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def scrape_targets(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as reply:
        data = json.loads(reply.read())
    return {t["labels"]["job"]: t["health"] for t in data["data"]["activeTargets"]}


def test_full_profile_runs_real_dependents_and_keeps_postgres_data(
        stack: tuple[list[str], Path, int]) -> None:
    base, run_dir, offset = stack
    registry = load_registry(REGISTRY, profile="full", offset=offset, run_dir=run_dir)
    port = {name: s.primary_port for name, s in registry.services.items()}
    up(base)

    assert redis.Redis(port=port["redis"]).ping()
    psql(port["postgres"], "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('hello')")
    own = {"gateway", "hub", "fallback", "inference"}
    deadline, health = time.monotonic() + 30, {}
    while time.monotonic() < deadline:  # Prometheus scrapes every 5 s; wait for the first round
        health = scrape_targets(port["prometheus"])
        if set(health) == own and set(health.values()) == {"up"}:
            break
        time.sleep(0.2)
    assert health == dict.fromkeys(own, "up")

    down = ollamamax(base, "down")
    assert down.returncode == 0, down.stderr
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"])
            if str(run_dir) in " ".join(p.info["cmdline"] or [])]
    assert left == []
    ports = [p for s in registry.managed for p in s.port_map.values()]
    assert all(bindable("127.0.0.1", p) for p in ports)
    assert (run_dir / "postgres" / "PG_VERSION").is_file()
    assert not any(p.name.startswith("dump") for p in (run_dir / "redis").iterdir())

    up(base)  # the second start finds the cluster initdb made the first time
    assert psql(port["postgres"], "SELECT note FROM kept") == "hello"


def test_the_full_profiles_prometheus_scrapes_a_secured_stack(tmp_path: Path) -> None:
    require("prometheus", "prometheus")
    registry = load_registry(REGISTRY, profile="full")
    offset = free_offset([p for s in registry.services.values() for p in s.port_map.values()])
    run_dir = tmp_path / "run"
    base = [*OLLAMAMAX, "--config", str(REGISTRY), "--offset", str(offset), "--run-dir",
            str(run_dir), "--profile", "full"]
    env = {**os.environ, "OLLAMAMAX_API_KEYS": "sk-full-profile"}
    env.pop("OLLAMAMAX_API_KEYS_FILE", None)
    ollama = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port",
                               str(11434 + offset)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Prometheus and what it scrapes: the stack's own services, every /metrics behind a key.
        started = subprocess.run([*base, "up", "-d", "prometheus"], env=env, cwd=ROOT,
                                 capture_output=True, text=True, check=False, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        prometheus = registry.services["prometheus"].primary_port + offset
        gateway = registry.services["gateway"].primary_port + offset
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"http://127.0.0.1:{gateway}/metrics", timeout=5)
        assert anonymous.value.code == 401
        own = {"gateway", "hub", "fallback", "inference"}
        deadline, health = time.monotonic() + 60, {}
        while time.monotonic() < deadline:  # scrapes every 5 s: wait for a round of each
            health = scrape_targets(prometheus)
            if set(health) == own and set(health.values()) == {"up"}:
                break
            time.sleep(0.2)
        assert health == dict.fromkeys(own, "up")
    finally:
        subprocess.run([*base, "down"], env=env, capture_output=True, check=False, timeout=60)
        ollama.terminate()
        ollama.wait(10)
