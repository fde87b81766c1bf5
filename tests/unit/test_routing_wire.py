"""The lean node client against a raw socket server: keep-alive, chunked lines, failures."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from ollamamax_stack.services.routing.wire import (
    HIGH_WATER,
    ConnectError,
    NodeLink,
    Response,
    WireClient,
    WireError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return await reader.readexactly(length)


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def test_whole_answers_reuse_one_connection() -> None:
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while True:
            try:
                body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(b'{"echo":' + body + b"}"))

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient()
        for n in range(3):
            resp = await client.post(url, "/api/chat", b'{"n":%d}' % n)
            data = await resp.read()
            assert resp.status == 200 and data == b'{"echo":{"n":%d}}' % n
            assert resp.content_length == len(data)
            resp.release()
        resp = await client.post(url, "/api/chat", b"{}")
        assert await resp.read() == b'{"echo":{}}'
        resp.release()
        client.close()
        server.close()
        assert len(connections) == 1

    asyncio.run(run())


def test_chunked_lines_cut_anywhere_come_out_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"a":', b'1}\n{"b"', b':2}\n{"c":3}\n'):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")

    async def run() -> None:
        server, url = await serve(handler)
        resp = await WireClient().post(url, "/api/chat", b"{}")
        assert resp.headers["content-type"] == "application/x-ndjson"
        assert [line async for line in resp.lines()] == [b'{"a":1}\n', b'{"b":2}\n',
                                                         b'{"c":3}\n']
        resp.release()
        server.close()

    asyncio.run(run())


def test_a_keep_alive_connection_the_node_closed_is_replaced_once() -> None:
    requests = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await read_request(reader))
        writer.write(answer(b"{}"))
        await writer.drain()
        writer.close()  # no keep-alive, without saying so

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient()
        for _ in range(3):
            resp = await client.post(url, "/x", b"{}")
            assert await resp.read() == b"{}"
            resp.release()
            await asyncio.sleep(0.05)  # the server's close arrives
        assert len(requests) == 3  # each request reached the node once
        server.close()

    asyncio.run(run())


def test_refused_connect_is_a_connect_error() -> None:
    async def run() -> None:
        server, url = await serve(lambda r, w: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectError, match="cannot connect"):
            await WireClient().post(url, "/x", b"{}")

    asyncio.run(run())


def test_no_answer_is_a_read_timeout_and_a_drop_mid_body_a_wire_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def dropping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":")
        await writer.drain()
        writer.transport.abort()

    async def run() -> None:
        server, url = await serve(silent)
        with pytest.raises(TimeoutError):
            await WireClient(read_timeout=0.2).post(url, "/x", b"{}")
        server.close()
        server, url = await serve(dropping)
        resp = await WireClient().post(url, "/x", b"{}")
        with pytest.raises(WireError):
            await resp.read()
        server.close()

    asyncio.run(run())


def test_close_mid_answer_hangs_up_on_the_node() -> None:
    hung_up = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not reader.at_eof():
            writer.write(b"3\r\n{}\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
            await asyncio.wait([asyncio.ensure_future(reader.read(1))], timeout=0.01)
        hung_up.set()

    async def run() -> None:
        server, url = await serve(handler)
        resp = await WireClient().post(url, "/x", b"{}")
        async for _ in resp.iter_any():
            break
        resp.close()
        await asyncio.wait_for(hung_up.wait(), 5)
        server.close()

    asyncio.run(run())


def test_the_read_timeout_counts_from_the_last_bytes_not_from_the_start() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(25):  # 1 s in all, far longer than the timeout
            writer.write(b"3\r\n{}\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.04)
        writer.write(b"0\r\n\r\n")

    async def run() -> None:
        server, url = await serve(trickle)
        resp = await WireClient(read_timeout=0.4).post(url, "/x", b"{}")
        assert len([line async for line in resp.lines()]) == 25
        server.close()

    asyncio.run(run())


def test_a_connection_that_timed_out_mid_answer_is_not_reused() -> None:
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        first = len(connections) == 1
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if first:  # half an answer, then silence: the rest never comes
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}\n\r\n")
                await writer.drain()
                await asyncio.sleep(30)
                return
            writer.write(answer(b'{"ok":true}'))

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient(read_timeout=0.3)
        resp = await client.post(url, "/api/chat", b"{}")
        with pytest.raises(TimeoutError):
            await resp.read()
        resp.release()
        client.read_timeout = 5.0  # time enough for an answer: a stalled connection never gives one
        resp = await client.post(url, "/api/chat", b"{}")
        assert await resp.read() == b'{"ok":true}'
        resp.release()
        assert len(connections) == 2  # a new connection, not the stalled one
        client.close()
        server.close()

    asyncio.run(run())


def test_a_request_the_node_began_answering_is_never_sent_again() -> None:
    requests = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                return
            if len(requests) == 2:  # the node begins its answer, then the connection breaks
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
                await writer.drain()
                writer.transport.abort()
                return
            writer.write(answer(b"{}"))

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient()
        resp = await client.post(url, "/api/generate", b'{"n":1}')
        assert await resp.read() == b"{}"
        resp.release()  # kept alive: the second request goes on this connection
        with pytest.raises(WireError):
            await client.post(url, "/api/generate", b'{"n":2}')
        assert requests == [b'{"n":1}', b'{"n":2}']  # the node saw the second request once
        client.close()
        server.close()

    asyncio.run(run())


def test_a_big_answer_read_slowly_comes_whole_and_the_connection_is_kept() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: past the high-water mark, so reading pauses
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient()
        for _ in range(2):
            resp = await client.post(url, "/x", b"{}")
            await asyncio.sleep(0.2)  # the node sends it all while nobody reads
            assert await resp.read() == body and resp.done
            resp.release()
        assert len(connections) == 1
        client.close()
        server.close()

    asyncio.run(run())


def test_lines_text_and_drain() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            body = b"\n\nlast \xff"
            writer.write(b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient()
        resp = await client.post(url, "/x", b"{}")
        assert resp.headers["x-name"] == "caf\xe9"  # latin-1, as HTTP says
        assert [line async for line in resp.lines()] == [b"\n", b"\n", b"last \xff"]
        resp.release()
        resp = await client.post(url, "/x", b"{}")
        assert await resp.text() == "\n\nlast \ufffd"
        resp.release()
        resp = await client.post(url, "/x", b"{}")
        await resp.drain(5)
        assert resp.done
        resp.release()
        client.close()
        server.close()

    asyncio.run(run())


def test_broken_answers_say_what_broke() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
        await writer.drain()
        writer.close()

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")

    async def run() -> None:
        server, url = await serve(garbage)
        resp = await WireClient().post(url, "/x", b"{}")
        with pytest.raises(WireError, match="^the node closed the connection$"):
            await resp.read()
        server.close()
        server, url = await serve(broken)
        resp = await WireClient().post(url, "/x", b"{}")
        with pytest.raises(WireError, match="^the node sent broken HTTP: "):
            await resp.read()
        server.close()
        with pytest.raises(ConnectError) as caught:
            await WireClient().post(url, "/x", b"{}")
        assert caught.value.reason.startswith("cannot connect: ")
        assert caught.value.reason == str(caught.value)
        with pytest.raises(ValueError, match="^not an http"):
            NodeLink("ftp://x", None)

    asyncio.run(run())


def test_the_request_bytes_and_the_default_ports() -> None:
    link = NodeLink("http://node.lan:11434", 2.5)
    assert link.request("/api/chat", b'{"a":1}') == (
        b"POST /api/chat HTTP/1.1\r\nHost: node.lan:11434\r\nContent-Type: application/json"
        b"\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
    assert (link.host, link.port, link.tls, link.connect_timeout) == ("node.lan", 11434, None,
                                                                       2.5)
    assert NodeLink("http://node.lan", None).port == 80
    secure = NodeLink("https://node.lan", None)
    assert secure.port == 443 and secure.tls is not None


def test_a_wait_that_began_after_the_watchdog_was_set_still_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.15)  # inside the first watchdog period...
        writer.write(b"3\r\n{}\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)  # ...then silence: the watchdog must look again

    async def run() -> None:
        server, url = await serve(handler)
        resp = await WireClient(read_timeout=0.3).post(url, "/x", b"{}")
        reading = asyncio.ensure_future(resp.read())
        done, _ = await asyncio.wait([reading], timeout=10)
        assert reading in done, "the wait never timed out"
        assert isinstance(reading.exception(), TimeoutError)
        server.close()

    asyncio.run(run())


def test_the_client_defaults_and_its_timeouts_reach_each_node_link() -> None:
    client = WireClient()
    assert (client.connect_timeout, client.read_timeout) == (3.0, 300.0)

    async def run() -> None:
        server, url = await serve(lambda r, w: read_request(r))  # headers never come
        client = WireClient(connect_timeout=1.5, read_timeout=0.2)
        with pytest.raises(TimeoutError):
            await client.post(url, "/x", b"{}")
        assert client._links[url].connect_timeout == 1.5
        server.close()

    asyncio.run(run())


def test_connect_errors_say_why_in_words() -> None:
    async def run() -> None:
        server, url = await serve(lambda r, w: asyncio.sleep(0))
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectError) as caught:
            await NodeLink(url, 5).post("/x", b"{}", None)
        assert caught.value.reason == (
            f"cannot connect: connect call failed ('127.0.0.1', {port})")

    asyncio.run(run())


def test_a_connect_that_gets_no_answer_times_out_after_the_connect_timeout() -> None:
    # A listening socket whose accept queue is full drops new SYNs: the connect hangs.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)

    async def run() -> None:
        with pytest.raises(ConnectError) as caught:
            await NodeLink(f"http://127.0.0.1:{port}", 0.25).post("/x", b"{}", None)
        assert caught.value.reason == "cannot connect: no answer within 0.25s"

    try:
        asyncio.run(run())
    finally:
        for sock in (*fillers, full):
            sock.close()


def test_https_speaks_tls_to_the_node() -> None:
    seen = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(3))  # a TLS ClientHello, not "POST"
        writer.close()

    async def run() -> None:
        server, url = await serve(handler)
        with pytest.raises(ConnectError) as caught:
            await WireClient().post(url.replace("http:", "https:"), "/x", b"{}")
        # An error without words (the handshake's reset) is named by its type.
        assert caught.value.reason == "cannot connect: connectionreseterror"
        server.close()

    asyncio.run(run())
    assert seen and seen[0][:1] == b"\x16"  # the TLS handshake record type


def test_an_idle_connection_the_node_closed_is_skipped_for_a_live_one() -> None:
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        second = len(connections) == 2
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(b"{}"))
            if second:  # answers, then hangs up without saying so
                await writer.drain()
                writer.close()
                return

    async def run() -> None:
        server, url = await serve(handler)
        link = NodeLink(url, 5)
        first = await link.post("/x", b"{}", 5)
        second = await link.post("/x", b"{}", 5)  # the first is busy: a second connection
        assert await first.read() == b"{}" == await second.read()
        await asyncio.sleep(0.1)  # the second's hang-up arrives before it is given back
        first.release()
        second.release()
        again = await link.post("/x", b"{}", 5)
        assert await again.read() == b"{}"
        again.release()
        assert len(connections) == 2  # the live idle connection, not a third one
        link.close()
        server.close()

    asyncio.run(run())


def test_a_closed_idle_connection_is_forgotten() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()

    async def run() -> None:
        server, url = await serve(handler)
        link = NodeLink(url, 5)
        resp = await link.post("/x", b"{}", 5)
        assert await resp.read() == b"{}"
        resp.release()
        assert len(link._idle) == 1
        for _ in range(100):
            if not link._idle:
                break
            await asyncio.sleep(0.05)
        assert link._idle == []
        server.close()

    asyncio.run(run())


def test_drain_gives_up_after_its_timeout_and_on_a_broken_answer() -> None:
    async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    async def dropping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}\n\r\n")
        await writer.drain()
        writer.transport.abort()

    async def run() -> None:
        server, url = await serve(stalling)
        resp = await WireClient().post(url, "/x", b"{}")
        draining = asyncio.ensure_future(resp.drain(0.3))
        done, _ = await asyncio.wait([draining], timeout=10)
        assert draining in done and draining.exception() is None and not resp.done
        resp.close()
        server.close()
        server, url = await serve(dropping)
        resp = await WireClient().post(url, "/x", b"{}")
        await resp.drain(10)
        assert not resp.done
        server.close()

    asyncio.run(run())


def test_an_unread_answer_stops_being_read_from_the_node() -> None:
    body = b"x" * (32 * 1024 * 1024)  # far more than the socket buffers hold

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async def run() -> None:
        server, url = await serve(handler)
        resp = await WireClient().post(url, "/x", b"{}")
        got = []
        for _ in range(2):
            await asyncio.sleep(0.5)  # nobody reads: the client holds a bounded part of it
            assert 0 < sum(len(chunk) for chunk in resp._chunks) <= 2 * HIGH_WATER
            async for chunk in resp.iter_any():  # reading again resumes it, for a while
                got.append(chunk)
                if sum(map(len, got)) > 4 * 1024 * 1024:
                    break
        got.append(await resp.read())
        assert b"".join(got) == body
        resp.release()
        server.close()

    asyncio.run(run())


def test_a_reset_by_the_node_says_so() -> None:
    async def resetting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # linger 0: an RST, not a FIN

    async def run() -> None:
        server, url = await serve(resetting)
        resp = await WireClient().post(url, "/x", b"{}")
        with pytest.raises(WireError, match="reset by peer"):
            await resp.read()
        server.close()

    asyncio.run(run())


def test_the_watchdog_leaves_a_wait_that_ended_alone() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        resp = Response(cast(Any, None), 0.1)
        resp._since = loop.time() - 1  # long overdue...
        resp._watch()  # ...but nobody waits
        resp._waiter = loop.create_future()
        resp._waiter.set_result(None)  # ...or the wait has just been woken
        resp._watch()
        assert resp._waiter.result() is None and resp._timer is None

    asyncio.run(run())


def test_hanging_up_logs_no_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async def run() -> None:
        errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(
            context))
        server, url = await serve(handler)
        resp = await WireClient().post(url, "/x", b"{}")
        resp.close()
        await asyncio.sleep(0.1)  # the connection's loss is reported
        assert errors == []
        server.close()

    asyncio.run(run())


def test_a_kept_alive_connection_closed_as_the_request_went_is_retried_on_a_new_one() -> None:
    requests = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                return
            if len(requests) == 2:  # its keep-alive ran out as the request came: no answer
                writer.close()
                return
            writer.write(answer(b'{"n":%d}' % len(requests)))

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient()
        resp = await client.post(url, "/x", b"{}")
        assert await resp.read() == b'{"n":1}'
        resp.release()
        resp = await client.post(url, "/x", b"{}")  # no byte came back: one more try
        assert await resp.read() == b'{"n":3}'
        resp.release()
        client.close()
        server.close()

    asyncio.run(run())


def test_the_read_timeout_holds_on_a_reused_connection_too() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))
        await read_request(reader)
        await asyncio.sleep(30)  # the second request on this connection: no answer

    async def run() -> None:
        server, url = await serve(handler)
        client = WireClient(read_timeout=0.3)
        resp = await client.post(url, "/x", b"{}")
        assert await resp.read() == b"{}"
        resp.release()
        asking = asyncio.ensure_future(client.post(url, "/x", b"{}"))
        done, _ = await asyncio.wait([asking], timeout=10)
        assert asking in done, "the wait never timed out"
        assert isinstance(asking.exception(), TimeoutError)
        server.close()

    asyncio.run(run())
