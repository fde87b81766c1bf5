"""One message on the holder's Unix socket: a JSON line, optionally with fds (SCM_RIGHTS)."""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_MESSAGE = 64 * 1024
MAX_FDS = 64


class WireError(OSError):
    """The peer went away or sent something that is not a message."""


def send(conn: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one message, its fds riding along the first byte (one sendmsg)."""
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    if fds:
        sent = socket.send_fds(conn, [data], fds)
        if sent < len(data):
            conn.sendall(data[sent:])
    else:
        conn.sendall(data)


def receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One message and the fds that came with it; WireError on EOF or garbage."""
    buffer = b""
    fds: list[int] = []
    while not buffer.endswith(b"\n"):
        # One byte at a time would be slow; a message is one line and the peer waits for the
        # answer, so a read never runs into the next message.
        data, got, _, _ = socket.recv_fds(conn, MAX_MESSAGE, MAX_FDS)
        fds.extend(got)
        if not data:
            for fd in fds:
                _close(fd)
            raise WireError("the other side closed the connection")
        buffer += data
        if len(buffer) > MAX_MESSAGE:
            for fd in fds:
                _close(fd)
            raise WireError("message too long")
    try:
        message = json.loads(buffer)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        for fd in fds:
            _close(fd)
        raise WireError("not a JSON object")
    return message, fds


def _close(fd: int) -> None:
    try:
        socket.close(fd)
    except OSError:
        pass
