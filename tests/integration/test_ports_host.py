"""`ports check` and `ports who` against real listeners on real (offset) ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ollamamax_stack.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "ports.toml"


def ollamamax(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ollamamax_stack", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def host_findings(offset: int, *extra: str) -> list[dict[str, object]]:
    result = ollamamax("--offset", str(offset), *extra, "ports", "check", "--format", "json")
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    return [f for f in report["findings"] if f["file"] is None]


@pytest.fixture
def gateway_port(default_offset: int) -> int:
    return load_registry(REGISTRY, offset=default_offset).services["gateway"].primary_port


@pytest.fixture
def listener(gateway_port: int) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", gateway_port))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def test_check_and_who_name_this_test_as_holder_then_free(
        default_offset: int, gateway_port: int, listener: socket.socket) -> None:
    me = os.getpid()
    command = " ".join(psutil.Process(me).cmdline())
    held = [f for f in host_findings(default_offset) if f["port"] == gateway_port]
    assert [(f["code"], f["service"]) for f in held] == [("port-in-use", "gateway")]
    assert f"pid {me} " in str(held[0]["message"]) and command in str(held[0]["message"])

    who = ollamamax("--offset", str(default_offset), "ports", "who", str(gateway_port))
    assert who.returncode == 0
    assert f"pid {me} " in who.stdout and command in who.stdout and "IPv4 127.0.0.1" in who.stdout

    listener.close()
    assert not [f for f in host_findings(default_offset) if f["port"] == gateway_port]
    after = ollamamax("--offset", str(default_offset), "ports", "who", str(gateway_port))
    assert after.stdout.strip() == f"{gateway_port} (gateway) free"


def test_who_sees_ipv6_listeners_and_prints_json(gateway_port: int) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", gateway_port))
        sock.listen()
        result = ollamamax("ports", "who", "--json", str(gateway_port))
    entry = json.loads(result.stdout)["ports"][0]
    assert entry["free"] is False
    assert [(item["family"], item["address"], item["pid"]) for item in entry["listeners"]] == [
        ("IPv6", "::1", os.getpid())]
    assert entry["listeners"][0]["started"]


LISTENER = ("import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
            "s.listen(); print('ready', flush=True); sys.stdin.read()")


def listening_child(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """A child process that listens on `port` with `env` added, once it says it is ready."""
    child = subprocess.Popen([sys.executable, "-c", LISTENER, str(port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **env})
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def test_a_previous_up_of_this_stack_is_told_apart(tmp_path: Path, default_offset: int,
                                                   gateway_port: int) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    child = listening_child(gateway_port, {"OLLAMAMAX_RUN_DIR": str(run_dir)})
    try:
        held = [f for f in host_findings(default_offset, "--run-dir", str(run_dir))
                if f["port"] == gateway_port]
        assert [f["code"] for f in held] == ["port-held-by-stack"]
        assert f"pid {child.pid} " in str(held[0]["message"])
        assert "ollamamax down" in str(held[0]["message"])
        foreign = [f for f in host_findings(default_offset) if f["port"] == gateway_port]
        assert [f["code"] for f in foreign] == ["port-in-use"]
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_running_stack_serving_its_own_port_is_only_a_warning(
        tmp_path: Path, default_offset: int, gateway_port: int) -> None:
    # The process that holds the gateway's port *is* this stack's gateway: `ports check` beside a
    # running stack warns instead of failing; another service's port held by it is still an error.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    child = listening_child(gateway_port, {"OLLAMAMAX_RUN_DIR": str(run_dir),
                                           "OLLAMAMAX_SERVICE": "gateway"})
    try:
        held = [f for f in host_findings(default_offset, "--run-dir", str(run_dir))
                if f["port"] == gateway_port]
        assert [(f["level"], f["code"]) for f in held] == [("warning", "stack-running")]
        assert f"pid {child.pid} " in str(held[0]["message"])
    finally:
        child.kill()
        child.wait(timeout=10)


def test_an_external_service_that_is_down_is_a_warning(default_offset: int) -> None:
    ollama = load_registry(REGISTRY, offset=default_offset).services["ollama"]
    down = [f for f in host_findings(default_offset) if f["service"] == "ollama"]
    assert [(f["level"], f["code"], f["port"]) for f in down] == [
        ("warning", "external-down", ollama.primary_port)]
