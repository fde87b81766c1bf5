"""Readiness probes on bare sockets (IPv4, IPv6, a host name, a Unix socket) and their pacing:
a silent starter among many is probed less often, a line in its log brings the probe forward."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ollamamax_stack.supervise import probes
from ollamamax_stack.supervise.probes import Output, wait_until

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _answer(status: int) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return handle


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)  # accepts and never answers: a hung starter


@asynccontextmanager
async def _server(handle: Handler, host: str) -> AsyncIterator[int]:
    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost",
                                  pytest.param("::1", marks=pytest.mark.skipif(
                                      not _has_ipv6(), reason="no IPv6 loopback here"))])
def test_http_and_tcp_probes_answer_truthfully(host: str) -> None:
    async def main() -> None:
        bind = "127.0.0.1" if host == "localhost" else host
        async with _server(_answer(200), bind) as ok, _server(_answer(503), bind) as busy:
            assert await probes.probe_http(host, ok, "/ready", 2.0)
            assert not await probes.probe_http(host, busy, "/ready", 2.0)
            assert await probes.probe_tcp(host, busy, 2.0)
        async with _server(_silent, bind) as hung:
            assert not await probes.probe_http(host, hung, "/ready", 0.2)  # times out: False
        assert not await probes.probe_http(host, ok, "/ready", 2.0)  # closed: refused
        assert not await probes.probe_tcp(host, ok, 2.0)

    asyncio.run(main())


def test_unix_socket_probes(tmp_path: Path) -> None:
    async def main() -> None:
        path = str(tmp_path / "probe.sock")
        server = await asyncio.start_unix_server(_answer(204), path)
        try:
            assert await probes.probe_http_unix(path, "/health/ready", 2.0)
            assert await probes.probe_unix(path, 2.0)
        finally:
            server.close()
            await server.wait_closed()
        assert not await probes.probe_http_unix(str(tmp_path / "none.sock"), "/", 2.0)
        assert not await probes.probe_unix(str(tmp_path / "none.sock"), 2.0)

    asyncio.run(main())


def test_the_quiet_pause_grows_only_with_many_starters(monkeypatch: pytest.MonkeyPatch) -> None:
    for waiting, pause in ((1, 0.05), (4, 0.05), (8, 0.1), (16, 0.2), (60, 0.2)):
        monkeypatch.setattr(probes._Waiting, "count", waiting)
        assert probes._Waiting.quiet(0.05) == pytest.approx(pause)


def test_many_silent_starters_are_probed_less_often(tmp_path: Path) -> None:
    """16 starters that write nothing for a second: each probed at most every 4 x period
    (a load that slows the test only lowers the counts)."""
    period, starters, seconds = 0.05, 16, 1.0
    counts = [0] * starters

    async def main() -> None:
        ready = asyncio.Event()

        def check(index: int) -> Callable[[], Awaitable[bool]]:
            async def one() -> bool:
                counts[index] += 1
                return ready.is_set()

            return one

        waits = [wait_until(check(i), 30, period, output=Output(tmp_path / f"s{i}.log"))
                 for i in range(starters)]
        gathered = asyncio.gather(*waits)
        await asyncio.sleep(seconds)
        ready.set()
        assert await gathered == [None] * starters

    asyncio.run(main())
    most = seconds / (probes.QUIET_MAX * period) + 2  # + the first probe and the last one
    assert max(counts) <= most, counts
    assert probes._Waiting.count == 0


def test_a_line_in_the_log_brings_the_probe_forward(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_text("starting\n")
    output = Output(log)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with log.open("a") as handle:
            handle.write("listening on 127.0.0.1:8080\n")
        # The quiet pause would end in 60 s: the line ends the wait long before the guard.
        await asyncio.wait_for(probes._until_said(output, loop.time(), loop.time() + 60), 20)
        assert not output.grew()  # seen once

    asyncio.run(main())
