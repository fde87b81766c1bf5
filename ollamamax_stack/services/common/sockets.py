"""Listening sockets: inherited from systemd (LISTEN_FDS) or bound here, a taken port named."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.hostports import who

SD_LISTEN_FDS_START = 3


class ListenError(OllamamaxError):
    """A service cannot listen: its port is taken, or inherited sockets are unusable (exit 1)."""


def inherited_sockets(names: list[str], env: Mapping[str, str]) -> dict[str, socket.socket]:
    """The sockets systemd passed (fd 3, 4, ...) by port name; empty unless meant for us."""
    if env.get("LISTEN_PID") != str(os.getpid()) or not env.get("LISTEN_FDS"):
        return {}
    try:
        count = int(env["LISTEN_FDS"])
    except ValueError:
        raise ListenError(f"LISTEN_FDS={env['LISTEN_FDS']!r} is not a number") from None
    fd_names = [n for n in env.get("LISTEN_FDNAMES", "").split(":") if n]
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
    found = adopt_sockets(fds, fd_names, names, f"LISTEN_FDS={count} but")
    # Children we start must not think these fds are theirs.
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)
    return found


def adopt_sockets(fds: list[int], fd_names: list[str], names: list[str],
                  source: str) -> dict[str, socket.socket]:
    """Listening sockets from fds passed to us (by systemd or the stack's holder), by port name."""
    found: dict[str, socket.socket] = {}
    for index, fd in enumerate(fds):
        # Named fds (FileDescriptorName=) map by name; otherwise in the order of our ports.
        name = fd_names[index] if index < len(fd_names) and fd_names[index] in names else (
            names[index] if index < len(names) else f"fd{fd}")
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ListenError(f"{source} fd {fd} is not a usable socket: "
                              f"{exc.strerror}") from None
        sock.setblocking(False)
        found[name] = sock
    return found


def holder(port: int) -> str:
    """Who holds a port, in one phrase."""
    found = who(port)
    if not found:
        return "another process"
    return "; ".join(sorted({item.describe() for item in found}))


def bind_socket(host: str, port: int, service: str) -> socket.socket:
    """A listening TCP socket on host:port, or ListenError naming the holder."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"{service}: port {port} on {host} is already in use by {holder(port)}") from None
        if exc.errno == errno.EACCES:
            raise ListenError(f"{service}: no permission to listen on {host}:{port}") from None
        raise ListenError(f"{service}: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock
