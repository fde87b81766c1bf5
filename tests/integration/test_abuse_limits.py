"""Servers under abuse: slowloris sockets are closed, a full service refuses cleanly, stays live."""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.services_procs import (
    Stack,
    fake_nodes,
    http,
    running_stack,
    spawn,
    wait_http,
)

pytestmark = pytest.mark.timeout(180)
SLOW = 500


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("abuse")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference"],
                       env={"OLLAMAMAX_HEADER_TIMEOUT": "1",
                            "OLLAMAMAX_IDLE_TIMEOUT": "1"}) as running:
        # The hub: capped, and started with a low soft fd limit it must raise to the hard one.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = min(256, hard)
        env = {**running.env, "OLLAMAMAX_HEADER_TIMEOUT": "60",
               "OLLAMAMAX_MAX_CONNECTIONS": "20", "OLLAMAMAX_MAX_WEBSOCKETS": "10"}
        proc = spawn("hub", running.argv("serve", "hub"), running.run_dir / "hub.log", env,
                     preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                           (limit, hard)))
        running.procs["hub"] = proc
        wait_http(proc, running.url("hub") + "/health/ready")
        yield running


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slowloris_sockets_are_closed_after_the_header_timeout(stack: Stack) -> None:
    host, port = address(stack.url("inference"))
    socks = []
    try:
        for index in range(SLOW):
            sock = socket.create_connection((host, port), timeout=10)
            # Half a request, then nothing: the header never ends.
            sock.sendall(b"GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\n" if index % 2
                         else b"GET /api/ta")
            sock.setblocking(False)
            socks.append(sock)
        deadline = time.monotonic() + 60
        open_socks = list(socks)
        while open_socks and time.monotonic() < deadline:
            open_socks = [s for s in open_socks if not closed_by_peer(s)]
            time.sleep(0.2)
        assert not open_socks, f"{len(open_socks)} of {SLOW} slow sockets still open"
    finally:
        for sock in socks:
            sock.close()
    assert http("GET", stack.url("inference") + "/health")[0] == 200


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(stack: Stack) -> None:
    host, port = address(stack.url("inference"))
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        while not closed_by_peer(sock) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert closed_by_peer(sock), "a kept-alive idle connection stayed open"


def test_the_soft_fd_limit_is_raised_to_the_hard_one(stack: Stack) -> None:
    pid = stack.procs["hub"].popen.pid
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    line = next(x for x in limits
                if x.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line


def test_a_full_service_refuses_cleanly_and_stays_live(stack: Stack) -> None:
    url = stack.url("hub")
    host, port = address(url)
    ws_url = url.replace("http://", "ws://") + "/chat"

    async def run() -> None:
        sockets = []
        idle: list[socket.socket] = []
        try:
            for _ in range(10):
                ws = await websockets.connect(ws_url)
                assert '"nodes"' in str(await ws.recv())
                sockets.append(ws)
            # The 11th WebSocket is over the WebSocket cap: closed with 1013 (try again later).
            extra = await websockets.connect(ws_url)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await extra.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            # Fill the connection cap with idle sockets that have sent a whole request line.
            for _ in range(10):
                sock = socket.create_connection((host, port), timeout=10)
                idle.append(sock)
            await asyncio.sleep(0.2)
            status, body = await asyncio.to_thread(http, "GET", url + "/metrics")
            assert status == 503 and "connections" in body["error"], body
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(ws_url)
            assert refused.value.response.status_code == 503
            status, _ = await asyncio.to_thread(http, "GET", url + "/health")
            assert status == 200
        finally:
            for ws in sockets:
                await ws.close()
            for sock in idle:
                sock.close()

    asyncio.run(run())
