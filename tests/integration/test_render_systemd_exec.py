"""The rendered unit really runs its service: ExecStart with the unit's Environment=, and with
the .socket unit's ports handed over as LISTEN_FDS (fd 3, 4, ...)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.targets import RenderOptions, render
from tests.portbase import free_offset
from tests.render_project import ROOT

REGISTRY = ROOT / "config" / "ports.toml"
SERVICE = "inference"  # two ports (api, web): two sockets to hand over


def unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def expand(value: str, state: Path) -> str:
    """What systemd does to a value: `%S` is the state root, `%%` a percent sign."""
    return re.sub(r"%([%S])", lambda m: "%" if m.group(1) == "%" else str(state), value)


def unit_environment(text: str, state: Path) -> dict[str, str]:
    env = {}
    for value in unit_values(text, "Environment"):
        key, _, val = shlex.split(value)[0].partition("=")
        env[key] = expand(val, state)
    return env


def unit_command(text: str, env: dict[str, str]) -> list[str]:
    (line,) = unit_values(text, "ExecStart")
    words = shlex.split(line)
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], expand(w, Path())) for w in words]


def wait_ready(url: str, proc: subprocess.Popen[bytes], notify: socket.socket) -> str:
    """Wait for READY=1 on the notify socket, then for /health/ready to answer 200."""
    notify.settimeout(30)
    message = notify.recv(4096).decode()
    assert "READY=1" in message.split("\n"), message
    deadline = time.monotonic() + 30
    last = ""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(json.loads(response.read()))
        except urllib.error.HTTPError as exc:  # 503 until the service's checks pass
            last = exc.read().decode(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"{url} never became ready: {last}")


@pytest.fixture
def offset() -> int:
    registry = load_registry(REGISTRY)
    return free_offset([p for s in registry.services.values() for p in s.port_map.values()])


@pytest.fixture
def fake_ollama(offset: int) -> Iterator[int]:
    port = 11434 + offset
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()


def run_unit(command: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            **kwargs)  # type: ignore[call-overload]


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def test_exec_start_with_the_unit_environment_serves_and_notifies(
        tmp_path: Path, offset: int, fake_ollama: int,
        notify_socket: tuple[socket.socket, str]) -> None:
    registry = load_registry(REGISTRY, offset=offset)
    text = render("systemd", registry)[f"ollamamax-{SERVICE}.service"]
    env = unit_environment(text, tmp_path / "state")
    # Nothing from this test's environment leaks in: only what the unit gives (and PATH).
    env = {**env, "PATH": os.environ["PATH"], "NOTIFY_SOCKET": notify_socket[1]}
    command = unit_command(text, env)
    assert Path(command[0]).is_absolute()
    proc = run_unit(command, env, cwd=tmp_path)
    try:
        service = registry.services[SERVICE]
        port = service.port_map["api"]
        wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, notify_socket[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tags", timeout=5) as reply:
            assert reply.status == 200  # the unit's OLLAMAMAX_OLLAMA_URL reached the fake
    finally:
        log = stop(proc)
    assert proc.returncode == 0, log


def test_socket_activation_serves_on_the_inherited_sockets(
        tmp_path: Path, offset: int, fake_ollama: int,
        notify_socket: tuple[socket.socket, str]) -> None:
    registry = load_registry(REGISTRY, offset=offset)
    files = render("systemd", registry, RenderOptions(socket_activation=True))
    text = files[f"ollamamax-{SERVICE}.service"]
    assert f"ollamamax-{SERVICE}.socket" in unit_values(text, "Requires")[0].split()
    listens = unit_values(files[f"ollamamax-{SERVICE}.socket"], "ListenStream")
    sockets = []
    for address in listens:  # what systemd does for the .socket unit
        host, _, port = address.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(64)
        sockets.append(sock)
    fds = [s.fileno() for s in sockets]

    def hand_over() -> None:
        for index, fd in enumerate(fds):
            os.dup2(fd, 3 + index)
            os.set_inheritable(3 + index, True)

    env = {**unit_environment(text, tmp_path / "state"), "PATH": os.environ["PATH"],
           "NOTIFY_SOCKET": notify_socket[1], "LISTEN_FDS": str(len(fds)),
           "LISTEN_FDNAMES": ":".join([SERVICE] * len(fds))}
    # LISTEN_PID must be the service's own pid: set it in a shell that then execs the service.
    command = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh",
               *unit_command(text, env)]
    proc = run_unit(command, env, cwd=tmp_path, preexec_fn=hand_over,
                    pass_fds=tuple(range(3, 3 + len(fds))))
    try:
        # We still hold both ports: the service cannot have bound them itself.
        api, web = (int(a.rpartition(":")[2]) for a in listens)
        wait_ready(f"http://127.0.0.1:{api}/health/ready", proc, notify_socket[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=5) as reply:
            assert reply.status == 200
    finally:
        log = stop(proc)
        for sock in sockets:
            sock.close()
    assert proc.returncode == 0, log
