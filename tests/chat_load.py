"""Steady client load through the gateway with the openai client: requests and open streams.

Non-streaming chat completions at a fixed concurrency, plus streaming chats kept open (each
opens the next as soon as one finishes). Every request is recorded with its start and end, so
failures can be told apart: refused (ECONNREFUSED), in flight on a process that was killed (it
spanned a kill), and the rest. No client retries (max_retries=0): each failure counts.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

SHORT = "hi"
LONG = " ".join(f"word{i}" for i in range(12))  # a stream of ~18 tokens


@dataclass
class Record:
    """One request: when it ran and how it ended."""

    stream: bool
    started: float
    ended: float = 0.0
    error: str | None = None
    refused: bool = False


@dataclass
class Tally:
    """Counts of a load run, failures split by cause."""

    ok: int = 0
    streams_ok: int = 0
    refused: int = 0
    in_flight: int = 0  # failed, but it was running on a process killed meanwhile
    failed: int = 0
    broken_streams: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for a test's output or a bench."""
        return (f"{self.ok} requests ok, {self.streams_ok} streams ok; refused {self.refused}, "
                f"failed {self.failed}, broken streams {self.broken_streams} "
                f"(+{self.in_flight} in flight on killed processes)")


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "Errno 111" in str(seen) or (
                "Connection refused" in str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class ChatLoad:
    """Runs in its own thread and event loop until stopped; `kills` marks kill instants."""

    def __init__(self, base_url: str, *, concurrency: int = 16, streams: int = 20,
                 model: str = "llama3.2") -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        self.streams = streams
        self.model = model
        self.records: list[Record] = []
        self.kills: list[tuple[float, float]] = []  # from SIGKILL sent to the process gone
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chat-load", daemon=True)

    def __enter__(self) -> ChatLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Let running requests finish, then end the thread."""
        self._stop.set()
        self._thread.join(120)

    def kill(self, pid: int) -> None:
        """SIGKILL a process of the service and mark the time until it is gone."""
        handle = os.pidfd_open(pid)
        try:
            started = time.monotonic()
            signal.pidfd_send_signal(handle, signal.SIGKILL)
            select.select([handle], [], [], 10.0)  # readable once it has exited (fds closed)
            self.kills.append((started, time.monotonic()))
        finally:
            os.close(handle)

    def _spans_kill(self, record: Record) -> bool:
        # Sent before the process was gone, answered (or not) after it was killed.
        return any(record.started <= gone and record.ended >= killed
                   for killed, gone in self.kills)

    def completed(self) -> int:
        """Requests and streams finished so far without error."""
        return sum(1 for r in list(self.records) if r.ended and r.error is None)

    def wait_completed(self, more: int, timeout: float = 60.0) -> None:
        """Wait until `more` requests have completed beyond now (the load is flowing)."""
        target = self.completed() + more
        deadline = time.monotonic() + timeout
        while self.completed() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"load stalled: {self.tally().line()}")
            time.sleep(0.02)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        client = openai.AsyncOpenAI(
            base_url=f"{self.base_url}/v1", api_key="unused", max_retries=0,
            timeout=httpx.Timeout(60.0, connect=30.0))
        try:
            await asyncio.gather(*(self._loop(client, False) for _ in range(self.concurrency)),
                                 *(self._loop(client, True) for _ in range(self.streams)))
        finally:
            await client.close()

    async def _loop(self, client: openai.AsyncOpenAI, stream: bool) -> None:
        while not self._stop.is_set():
            record = Record(stream=stream, started=time.monotonic())
            self.records.append(record)
            try:
                if stream:
                    await self._stream(client)
                else:
                    reply = await client.chat.completions.create(
                        model=self.model, messages=[{"role": "user", "content": SHORT}])
                    if not reply.choices[0].message.content:
                        raise RuntimeError("empty reply")
            except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                cause = exc.__cause__ or exc.__context__
                record.error = f"{type(exc).__name__}: {exc}" + (
                    f" ({type(cause).__name__}: {cause})" if cause else "")
                record.refused = _refused(exc)
                await asyncio.sleep(0.05)  # a failing gateway must not be hammered
            record.ended = time.monotonic()

    async def _stream(self, client: openai.AsyncOpenAI) -> None:
        chunks: Any = await client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": LONG}], stream=True)
        finished = None
        text = ""
        async for chunk in chunks:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finished = chunk.choices[0].finish_reason or finished
        if finished is None or "word11" not in text:
            raise RuntimeError(f"stream ended early (finish_reason {finished!r})")

    def tally(self) -> Tally:
        """Count what happened so far."""
        tally = Tally()
        for record in list(self.records):
            if not record.ended:
                continue
            if record.error is None:
                if record.stream:
                    tally.streams_ok += 1
                else:
                    tally.ok += 1
                continue
            if record.refused:
                tally.refused += 1
            elif self._spans_kill(record):
                tally.in_flight += 1
            elif record.stream:
                tally.broken_streams += 1
            else:
                tally.failed += 1
            if len(tally.errors) < 5 and not self._spans_kill(record):
                tally.errors.append(record.error)
        return tally
