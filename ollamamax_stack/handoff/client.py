"""A service process's side of the handoff: take the held sockets, give them back if asked."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ollamamax_stack.handoff import wire
from ollamamax_stack.services.common.sockets import ListenError, adopt_sockets

HANDOFF_ENV = "OLLAMAMAX_HANDOFF"  # the holder's Unix socket
SLOT_ENV = "OLLAMAMAX_SLOT"  # the supervisord program this process runs as (`gateway.0a`)
PROBE_ENV = "OLLAMAMAX_PROBE_PREFIX"  # where this process answers its own probes
CONNECT_WAIT = 10.0
RECONNECT_PERIOD = 0.1


def _connect(path: Path, wait: float) -> socket.socket:
    deadline = time.monotonic() + wait
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            return conn
        except OSError:
            conn.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(RECONNECT_PERIOD)  # the holder is being (re)started by supervisord


def request(path: Path, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One question to the holder (`list`, `sync`) and its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        wire.send(conn, message)
        answer, fds = wire.receive(conn)
    for fd in fds:
        os.close(fd)
    return answer


class Handoff:
    """The sockets one process took from the holder, and its connection to it."""

    def __init__(self, path: Path, service: str, slot: str) -> None:
        self.path = path
        self.service = service
        self.slot = slot
        self.sockets: dict[str, socket.socket] = {}
        self.conn: socket.socket | None = None
        self.closed = threading.Event()

    def take(self, names: list[str]) -> dict[str, socket.socket]:
        """Ask the holder for this service's listening sockets, by port name."""
        try:
            conn = _connect(self.path, CONNECT_WAIT)
            wire.send(conn, {"op": "take", "service": self.service, "slot": self.slot,
                             "pid": os.getpid()})
            answer, fds = wire.receive(conn)
        except OSError as exc:
            raise ListenError(f"{self.service}: cannot take its sockets from the stack's "
                              f"holder at {self.path}: {exc}") from None
        if not answer.get("ok"):
            conn.close()
            raise ListenError(f"{self.service}: the stack's socket holder says: "
                              f"{answer.get('error')}")
        self.sockets = adopt_sockets(fds, list(answer.get("names", [])), names,
                                     f"the holder at {self.path} sent")
        self.conn = conn
        threading.Thread(target=self._stay, name="handoff", daemon=True).start()
        return self.sockets

    def _stay(self) -> None:
        """While we live, stay connected; a restarted holder gets our sockets back."""
        while not self.closed.is_set():
            conn = self.conn
            try:
                if conn is not None and conn.recv(1):
                    continue
            except OSError:
                pass
            if self.closed.is_set():
                return
            try:
                self.conn = _connect(self.path, float("inf"))
                names = list(self.sockets)
                wire.send(self.conn, {"op": "give", "service": self.service, "slot": self.slot,
                                      "pid": os.getpid(), "names": names},
                          [self.sockets[n].fileno() for n in names])
                wire.receive(self.conn)
            except OSError:
                time.sleep(RECONNECT_PERIOD)

    def close(self) -> None:
        """Stop giving sockets back: this process is draining and has closed them."""
        self.closed.set()
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def from_environment(env: Mapping[str, str], service: str) -> Handoff | None:
    """The handoff the supervisor set up for this process, if any."""
    path = env.get(HANDOFF_ENV)
    if not path:
        return None
    return Handoff(Path(path), service, env.get(SLOT_ENV) or service)
