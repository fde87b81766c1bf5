"""`--profile full`: real redis, PostgreSQL and Prometheus beside the stack, scraping it."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
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
from ollamamax_stack.hostports import bindable
from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.targets import render
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


def run_psql(port: int, sql: str, password: str | None,
             user: tuple[int, int] | None = None) -> subprocess.CompletedProcess[str]:
    """psql as the stack's clients run it (`-w`: never prompt), as another Unix user if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    argv = ["psql", "-w", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
            "postgres", "-tAc", sql]
    if user is not None:  # a second local user: no access to the run dir, nor our groups
        argv = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups",
                *argv]
        env["HOME"] = "/"
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30,
                          env=env, cwd="/")


def psql(port: int, sql: str, run_dir: Path) -> str:
    password = (run_dir / "postgres.password").read_text().strip()
    result = run_psql(port, sql, password)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def redis_password(run_dir: Path) -> str:
    return (run_dir / "redis.password").read_text().strip()


STRANGER = "ollamamax-stranger"


@pytest.fixture
def stranger() -> tuple[int, int]:
    """A second local user (created once on this machine when absent): uid and gid."""
    if os.geteuid() != 0:
        pytest.skip("creating and becoming a second local user needs root")
    try:
        entry = pwd.getpwnam(STRANGER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        STRANGER], check=True, capture_output=True, timeout=30)
        entry = pwd.getpwnam(STRANGER)
    return entry.pw_uid, entry.pw_gid


def http_json(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.status, json.loads(reply.read())


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

    assert redis.Redis(port=port["redis"], password=redis_password(run_dir)).ping()
    psql(port["postgres"], "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('hello')",
         run_dir)
    own = {"gateway", "hub", "fallback", "inference"}
    deadline, health = time.monotonic() + 30, {}
    while time.monotonic() < deadline:  # Prometheus scrapes every 5 s; wait for the first round
        health = scrape_targets(port["prometheus"])
        if set(health) == own and set(health.values()) == {"up"}:
            break
        time.sleep(0.2)
    assert health == dict.fromkeys(own, "up")
    # ...and loads the rules of `render alerts` beside its config.
    _, rules = http_json(f"http://127.0.0.1:{port['prometheus']}/api/v1/rules")
    groups = rules["data"]["groups"]  # type: ignore[index]
    assert [g["name"] for g in groups] == ["ollamamax"], groups
    assert len(groups[0]["rules"]) == 5, groups

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
    assert psql(port["postgres"], "SELECT note FROM kept", run_dir) == "hello"


def modes(run_dir: Path) -> dict[str, int]:
    """Every path under the run dir that a group or other user may read, write or enter."""
    shared = {}
    for path in run_dir.rglob("*"):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            shared[str(path.relative_to(run_dir))] = mode
    return shared


def test_full_profile_secrets_keep_a_second_local_user_out(
        stack: tuple[list[str], Path, int], stranger: tuple[int, int]) -> None:
    base, run_dir, offset = stack
    before = stat.S_IMODE(run_dir.stat().st_mode)
    registry = load_registry(REGISTRY, profile="full", offset=offset, run_dir=run_dir)
    port = {name: s.primary_port for name, s in registry.services.items()}
    up(base)

    # PostgreSQL: no login without the generated password, and not with a guessed one.
    for password in (None, "postgres", ""):
        refused = run_psql(port["postgres"], "COPY (SELECT 1) TO PROGRAM 'id'", password,
                           stranger)
        assert refused.returncode != 0, refused.stdout
        assert "password" in refused.stderr, refused.stderr
    assert psql(port["postgres"], "SELECT current_user", run_dir) == "postgres"
    for name in ("postgres.password", "redis.password"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600
    # redis: nothing without the password, everything with it.
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port["redis"]).exists("x")
    assert redis.Redis(port=port["redis"], password=redis_password(run_dir)).ping()
    _, health = http_json(registry.url(registry.services["gateway"]) + "/health")
    assert health["store"] == "redis" and health["redis"]["up"] is True, health

    # Only the run dir itself may be entered by others (the postgres user needs it), while up.
    assert modes(run_dir) == {}
    assert stat.S_IMODE(run_dir.stat().st_mode) & 0o066 == 0
    down = ollamamax(base, "down")
    assert down.returncode == 0, down.stderr
    assert stat.S_IMODE(run_dir.stat().st_mode) == before



def test_the_systemd_postgres_unit_needs_the_generated_password(
        stranger: tuple[int, int]) -> None:
    from tests.integration.test_render_systemd_exec import stop, unit_command, unit_environment

    require("postgres", "postgresql")
    registry = load_registry(REGISTRY, profile="full", offset=free_offset([5432]))
    text = render("systemd", registry)["ollamamax-postgres.service"]
    state = Path(tempfile.mkdtemp(prefix="ollamamax-units-"))
    state.chmod(0o711)  # as /var/lib: the postgres user may pass through
    env = {**unit_environment(text, state), "PATH": os.environ["PATH"]}
    run_dir = Path(env["OLLAMAMAX_RUN_DIR"])
    assert env["OLLAMAMAX_POSTGRES_PASSWORD_FILE"] == str(run_dir / "postgres.password")
    port = registry.services["postgres"].primary_port
    proc = subprocess.Popen(unit_command(text, env), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)],
                             check=False).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, "postgres never started"
            time.sleep(0.2)
        refused = run_psql(port, "SELECT 1", None, stranger)
        assert refused.returncode != 0 and "password" in refused.stderr, refused.stderr
        assert psql(port, "SELECT current_user", run_dir) == "postgres"
    finally:
        stop(proc)
        shutil.rmtree(state, ignore_errors=True)


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
