"""supervisord's event listener protocol on stdin/stdout: READY, a header and payload, RESULT.

http://supervisord.org/events.html#event-listener-notification-protocol
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One event supervisord sent: its name and the `key:value` tokens of its payload."""

    name: str
    fields: dict[str, str]


def _tokens(line: str) -> dict[str, str]:
    return dict(word.split(":", 1) for word in line.split() if ":" in word)


def parse(header: bytes, payload: bytes) -> Event:
    """The event in a header line and its payload (only the payload's first line is kept)."""
    head = _tokens(header.decode(errors="replace"))
    first = payload.decode(errors="replace").split("\n", 1)[0]
    return Event(head.get("eventname", ""), _tokens(first))


async def listen(on_event: Callable[[Event], None]) -> None:
    """Answer supervisord's events until stdin closes (supervisord is gone), then return."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        os.write(sys.stdout.fileno(), b"READY\n")
        header = await reader.readline()
        if not header.endswith(b"\n"):
            return
        length = int(_tokens(header.decode(errors="replace")).get("len", "0"))
        try:
            payload = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            return
        on_event(parse(header, payload))
        os.write(sys.stdout.fileno(), b"RESULT 2\nOK")
