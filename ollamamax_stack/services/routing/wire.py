"""A lean keep-alive HTTP/1.1 client for the hop to a node: POST JSON, read the answer.

aiohttp's client spends more CPU per request than the whole rest of a gateway request
(bench/peers.py; the profile is in the issue 11 note): headers merged into multidicts, a
payload registry, tracing hooks, cookie jars. A node hop needs none of that: one POST with a
known body, an answer whole or streamed (chunked NDJSON). httptools (llhttp, the parser of
Node.js) does the parsing; this module keeps connections per node and hands the bytes on.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # unread bytes at which a connection stops reading from the node
IDLE_PER_NODE = 512  # idle keep-alive connections kept per node


class WireError(ConnectionError):
    """The node's connection broke or it spoke no HTTP we understand."""


class ConnectError(OSError):
    """No connection to the node could be made (refused, unreachable, timed out)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Response:
    """A node's answer: status and headers at once, the body as it arrives."""

    def __init__(self, conn: _Connection, timeout: float | None) -> None:
        # (mutmut: None for False and "" for None below are falsy alike; `_since` is set
        # before it is read; `keep_alive` is set by the headers before anyone reads it; a
        # `_buffered` one off only moves when reading pauses, as in _feed)
        self._conn = conn
        self._timeout = timeout
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        # One watchdog timer for the whole answer, not one per wait: a stream waits once
        # per token, and a timer per wait cost more than the rest of the wait.
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0  # loop time the current wait began

    @property
    def done(self) -> bool:
        """Whether the whole answer has arrived."""
        return self._done

    @property
    def content_length(self) -> int | None:
        """The Content-Length header, when the node sent one."""
        raw = self.headers.get("content-length")
        return int(raw) if raw is not None and raw.isdigit() else None

    # -- fed by the connection ---------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        # (mutmut: thresholds off by one, or a count off, move when reading pauses and
        # resumes, not what is read: the 1 MiB test reads every byte either way)
        if self._buffered > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._stop_watch()
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._stop_watch()
            self._wake()

    # -- read by the caller ------------------------------------------------------------
    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        if self._timeout is not None:
            self._since = loop.time()
            if self._timer is None:
                # (mutmut: `-` makes the watchdog look at once, find it early, and look again)
                self._timer = loop.call_at(self._since + self._timeout, self._watch)
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _watch(self) -> None:
        """The watchdog: expire a wait older than the timeout, else look again later."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self._timeout is None:
            return  # not waiting now: the next wait starts the watchdog again
        loop = asyncio.get_running_loop()
        due = self._since + self._timeout
        if loop.time() >= due:  # `>`: at the very due time it looks once more, then expires
            waiter.set_exception(TimeoutError())
        else:
            self._timer = loop.call_at(due, self._watch)

    def _stop_watch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _take(self) -> bytes:
        data = self._chunks.popleft()
        self._buffered -= len(data)
        # (mutmut: `<`, `/` or a fifth move when reading resumes, not what is read)
        if self._buffered <= HIGH_WATER // 4:
            self._conn.resume()
        return data

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in."""
        while True:
            if self._chunks:
                yield self._take()
            elif self._done:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

    async def drain(self, timeout: float) -> None:
        """Read and drop the rest of the answer (at most `timeout` seconds), so that its
        connection can serve the next request instead of being closed."""
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.iter_any():
                    pass
        except (TimeoutError, WireError):
            pass

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([chunk async for chunk in self.iter_any()])

    async def text(self) -> str:
        """The whole body as text."""
        return (await self.read()).decode(errors="replace")

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line (each with its newline; the last one maybe without)."""
        rest = b""  # (mutmut: None, and `start = None` below, read the same: falsy, slice 0)
        async for chunk in self.iter_any():
            if rest:
                chunk = rest + chunk
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                yield chunk[start:end + 1]
                start = end + 1
            rest = chunk[start:]
        if rest:
            yield rest

    def close(self) -> None:
        """Drop the connection (the node sees the request cancelled)."""
        # (mutmut: `_closed` left false here or in release() only aborts twice: idempotent)
        if not self._closed:
            self._closed = True
            self._stop_watch()
            self._conn.abort()

    def release(self) -> None:
        """Give the connection back for the next request when the answer was read whole."""
        if self._closed:
            return
        self._closed = True
        self._stop_watch()
        if self._done and self.keep_alive and not self._chunks:
            self._conn.idle()
        else:
            self._conn.abort()


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a node: one request at a time."""

    def __init__(self, link: NodeLink) -> None:
        # (mutmut: None/""/False swaps here are falsy alike; `received`, `response` and
        # `transport` are set before they are read, by send() and connection_made())
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.received = False  # any byte of the current answer
        self.lost = False
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclasses, but they behave as one.
        self.transport = cast(asyncio.Transport, transport)  # (mutmut: cast does nothing)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.response is not None:
                self.response._fail(WireError(f"the node sent broken HTTP: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.response is not None:
            reason = str(exc) if exc else "the node closed the connection"
            self.response._fail(WireError(reason))
        self.link.forget(self)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        # (mutmut: "LATIN-1" is the same codec)
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        response.status = self.parser.get_status_code()
        response.keep_alive = self.parser.should_keep_alive()
        response._wake()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        self.response._finish()

    # the link's side
    def send(self, request: bytes, timeout: float | None) -> Response:
        assert self.transport is not None
        self.response = Response(self, timeout)
        self.received = False  # (mutmut: None is falsy alike)
        self.transport.write(request)
        return self.response

    def pause(self) -> None:
        # (mutmut: `or` pauses a paused transport again: pause_reading is idempotent)
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        # (mutmut: `or`s resume a transport not paused, or closed: a no-op; None is falsy too)
        if self.paused and self.transport is not None and not self.lost:
            self.paused = False
            self.transport.resume_reading()

    def idle(self) -> None:
        self.response = None
        self.resume()
        self.parser = httptools.HttpResponseParser(self)
        self.link.park(self)

    def abort(self) -> None:
        self.response = None
        if self.transport is not None:
            self.transport.abort()


class NodeLink:
    """The connections to one node (`http://host:port`), reused while they stay open."""

    def __init__(self, url: str, connect_timeout: float | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        self.authority = parts.netloc.encode()
        self.connect_timeout = connect_timeout
        self._idle: list[_Connection] = []

    def park(self, conn: _Connection) -> None:
        if len(self._idle) < IDLE_PER_NODE:  # `<=`: one idle connection more, harmless
            self._idle.append(conn)
        else:
            conn.abort()

    def forget(self, conn: _Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self), self.host,
                                                       self.port, ssl=self.tls)
        except TimeoutError:
            raise ConnectError(f"cannot connect: no answer within "
                               f"{self.connect_timeout:g}s") from None
        except OSError as exc:
            reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
            raise ConnectError(f"cannot connect: {reason}") from None
        return conn

    def request(self, path: str, body: bytes) -> bytes:
        """The bytes of a POST of a JSON body."""
        return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self.authority +
                b"\r\nContent-Type: application/json\r\nContent-Length: " +
                str(len(body)).encode() + b"\r\n\r\n" + body)

    async def post(self, path: str, body: bytes, read_timeout: float | None) -> Response:
        """POST and wait for the status and headers; raises ConnectError, TimeoutError, or
        WireError (the node dropped the connection before answering)."""
        request = self.request(path, body)
        while self._idle:
            conn = self._idle.pop()
            if conn.lost:
                continue
            response = conn.send(request, read_timeout)
            try:
                await self._headers(response)
                return response
            except WireError:
                if conn.received:
                    raise
                # A kept-alive connection the node had closed meanwhile: one more try, on a
                # new connection (never more: the node may have seen the request).
                break
        conn = await self._connect()
        response = conn.send(request, read_timeout)
        await self._headers(response)
        return response

    @staticmethod
    async def _headers(response: Response) -> None:
        try:
            while response.status == 0:
                if response._error is not None:
                    raise response._error
                await response._wait()
        except BaseException:
            response.close()
            raise

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.abort()
        self._idle.clear()


class WireClient:
    """A NodeLink per node URL."""

    def __init__(self, connect_timeout: float | None = 3.0,
                 read_timeout: float | None = 300.0) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._links: dict[str, NodeLink] = {}

    async def post(self, url: str, path: str, body: bytes) -> Response:
        """POST a JSON body to `url` + `path`."""
        link = self._links.get(url)
        if link is None:
            link = self._links[url] = NodeLink(url, self.connect_timeout)
        return await link.post(path, body, self.read_timeout)

    def close(self) -> None:
        """Close every idle connection."""
        for link in self._links.values():
            link.close()
        self._links.clear()
