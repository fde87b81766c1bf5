"""Held sockets under load: kill -9, graceful restarts, reload and workers drop no client.

One stack (gateway and inference on held sockets, a fake Ollama) is brought up for the module.
Through the gateway, the openai client sends non-streaming chats at concurrency 16 and keeps 20
streaming chats open, without retries, while the gateway is killed, restarted and reloaded.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from ollamamax_stack.handoff.paths import holder_socket, probe_prefix, probe_socket
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import Status
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.probes import probe_http_unix
from ollamamax_stack.supervise.rpc import Supervisor
from tests.chat_load import ChatLoad
from tests.fixtures.stacks.harness import Stack, held_config, running_with_fake_ollama

pytestmark = pytest.mark.timeout(240)
KILLS = 20
RESTARTS = 5
# A chat takes ~0.5 s, a stream ~2.5 s: clients in flight at every kill, and a load the
# shared CI cores can carry while a new gateway process starts.
TOKEN_DELAY = "0.08"
FAST = {"OLLAMAMAX_HEALTH_INTERVAL": "0.2", "OLLAMAMAX_DRAIN_TIMEOUT": "10"}


class HeldStack(Stack):
    """The `held` fixture stack from an editable copy of its registry, with a fake Ollama."""

    fake: subprocess.Popen[bytes] | None = None

    def edit(self, old: str, new: str) -> None:
        """Change the registry copy in place (the running stack does not see it until reload)."""
        text = self.config.read_text()
        assert old in text, old
        self.config.write_text(text.replace(old, new, 1))

    def gateway(self) -> dict[str, int]:
        """Serving gateway slot -> pid, as supervisord has them now."""
        infos = Supervisor(RunPaths(self.run_dir).socket).all_info()
        return {n: i.pid for n, i in infos.items()
                if n.startswith("gateway.") and i.state == "RUNNING" and i.pid}

    def slot_ready(self, slot: str) -> bool:
        """Whether that slot's own process says it is ready (its probe socket)."""
        path = probe_socket(probe_prefix(self.run_dir, slot, ["main"]), "main")
        return asyncio.run(probe_http_unix(str(path), "/health/ready", 1.0))

    def chats_answered(self, slot: str) -> float:
        """Chat completions one gateway process answered (its /metrics, on its probe socket)."""
        path = probe_socket(probe_prefix(self.run_dir, slot, ["main"]), "main")
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(str(path))
            conn.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            text = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("http_requests_total{") and "/v1/chat/completions" in line)

    def ready_state(self) -> bool:
        """Whether the stack's state calls the gateway ready."""
        entry = st.load(RunPaths(self.run_dir)).services.get("gateway")
        return entry is not None and entry.state == Status.READY


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeldStack]:
    tmp = tmp_path_factory.mktemp("held")
    made = HeldStack("held", tmp / "run", held_config(tmp))
    # 36 requests at once on one node: slots enough for all, or queued ones outlast a drain.
    ollama = made.registry.url(made.registry.services["ollama"])
    with running_with_fake_ollama(made, "--token-delay", TOKEN_DELAY,
                                  env={**FAST, "OLLAMA_NODES": f"{ollama};slots=64"}):
        yield made


def _load(stack: HeldStack) -> ChatLoad:
    return ChatLoad(stack.registry.url(stack.registry.services["gateway"]))


def test_kill_9_of_the_gateway_refuses_nobody(stack: HeldStack) -> None:
    with _load(stack) as load:
        load.wait_completed(30)
        for _ in range(KILLS):
            (slot, pid), = stack.gateway().items()
            load.kill(pid)
            deadline = time.monotonic() + 30
            while not (stack.ready_state() and stack.gateway() and pid not in
                       stack.gateway().values()):
                assert time.monotonic() < deadline, "the gateway did not come back"
                time.sleep(0.05)
            load.wait_completed(10)  # served by the new process before the next kill
    tally = load.tally()
    print(f"\n{KILLS} x kill -9 of the gateway: {tally.line()}")
    assert tally.refused == 0, tally.errors
    assert tally.failed == 0 and tally.broken_streams == 0, tally.errors
    assert tally.ok > 0 and tally.streams_ok > 0
    restarts = stack.service("gateway")["restarts"]
    assert restarts >= KILLS


def test_restart_drains_the_old_process_and_drops_nothing(stack: HeldStack) -> None:
    with _load(stack) as load:
        load.wait_completed(30)
        for _ in range(RESTARTS):
            (before,) = stack.gateway().values()
            done = stack.cli("restart", "gateway")
            assert done.returncode == 0, done.stdout + done.stderr
            assert "draining" in done.stdout
            (after,) = stack.gateway().values()
            assert after != before and not psutil.pid_exists(before)
            load.wait_completed(10)
    tally = load.tally()
    print(f"\n{RESTARTS} x restart gateway: {tally.line()}")
    assert tally.refused == tally.failed == tally.broken_streams == tally.in_flight == 0, (
        tally.errors)
    assert tally.streams_ok > 0


def test_reload_rolls_only_the_changed_service_and_refuses_a_port_move(
        stack: HeldStack) -> None:
    inference = stack.service("inference")["pid"]
    with _load(stack) as load:
        load.wait_completed(30)
        stack.edit('command = "ollamamax serve gateway"',
                   'command = "ollamamax serve gateway"\nenv = { RELOADED = "yes" }')
        done = stack.cli("reload")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "gateway" in done.stdout and "definition changed" in done.stdout
        assert "inference" not in done.stdout
        load.wait_completed(10)
    tally = load.tally()
    print(f"\nreload (gateway env changed): {tally.line()}")
    assert tally.refused == tally.failed == tally.broken_streams == tally.in_flight == 0, (
        tally.errors)
    (pid,) = stack.gateway().values()
    assert psutil.Process(pid).environ()["RELOADED"] == "yes"
    assert stack.service("inference")["pid"] == inference  # unchanged: not restarted

    port = stack.port("gateway")
    stack.edit(f"port = {port - stack.offset}", f"port = {port - stack.offset + 7}")
    moved = stack.cli("reload")
    stack.edit(f"port = {port - stack.offset + 7}", f"port = {port - stack.offset}")
    assert moved.returncode == 1
    assert moved.stderr.count("\n") == 1 and "Traceback" not in moved.stderr
    assert re.search(rf"move port {port} -> {port + 7} of the running gateway", moved.stderr)
    assert "--force" in moved.stderr
    assert stack.cli("reload").stdout.strip().endswith("nothing changed")


def test_workers_share_the_socket_and_restart_one_at_a_time(stack: HeldStack) -> None:
    stack.edit("restart = { limit", "workers = 2\nrestart = { limit")
    done = stack.cli("reload")
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {w["name"]: w for w in stack.service("gateway")["workers"]}
    assert set(workers) == {"gateway:0", "gateway:1"}
    assert all(w["state"] == "serving" and w["pid"] for w in workers.values())
    with _load(stack) as load:
        load.wait_completed(30)
        done = stack.cli("restart", "gateway:1")
        assert done.returncode == 0, done.stdout + done.stderr
        load.wait_completed(10)
    after = {w["name"]: w for w in stack.service("gateway")["workers"]}
    assert after["gateway:0"]["pid"] == workers["gateway:0"]["pid"]  # restarted alone
    assert after["gateway:1"]["pid"] != workers["gateway:1"]["pid"]
    tally = load.tally()
    assert tally.refused == tally.failed == tally.broken_streams == 0, tally.errors
    # Both processes answered chats from the one socket (each counts its own, on its probe door).
    for slot in stack.gateway():
        assert stack.chats_answered(slot) > 0, slot
    text = stack.cli("status").stdout
    assert "gateway:0" in text and "gateway:1" in text and "serving" in text


def test_a_killed_holder_gets_the_sockets_back_from_the_running_workers(
        stack: HeldStack) -> None:
    client = Supervisor(RunPaths(stack.run_dir).socket)
    holder = client.info("_sockets").pid
    assert holder is not None
    with _load(stack) as load:
        load.wait_completed(20)
        os.kill(holder, signal.SIGKILL)
        log = stack.run_dir / "logs" / "_sockets.log"
        given = rf"got 127\.0\.0\.1:{stack.port('gateway')} back from gateway"
        deadline = time.monotonic() + 20
        while not re.search(given, log.read_text()):  # supervisord restarted it, the worker gave
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert client.info("_sockets").pid not in (None, holder)
        load.wait_completed(20)
        done = stack.cli("restart", "gateway")  # the new holder hands the same socket out
        assert done.returncode == 0, done.stdout + done.stderr
        load.wait_completed(10)
    tally = load.tally()
    assert tally.refused == tally.failed == tally.broken_streams == 0, tally.errors


def test_down_leaves_no_process_and_no_bound_port(stack: HeldStack) -> None:
    done = stack.cli("down")
    assert done.returncode == 0, done.stdout + done.stderr
    stack.assert_clean()
    assert not holder_socket(stack.run_dir).exists()
