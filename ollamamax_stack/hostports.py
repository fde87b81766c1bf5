"""Ports on this host: can we bind it, and if not, who holds it (pid, user, command line)."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

from ollamamax_stack.markers import RUN_DIR_ENV, SERVICE_ENV


@dataclass(frozen=True)
class Listener:
    """A process listening on a TCP port."""

    port: int
    address: str
    family: str  # "IPv4" or "IPv6"
    pid: int | None
    user: str | None
    command: str | None
    started: datetime | None
    run_dir: str | None  # the OLLAMAMAX_RUN_DIR in its environment, if any
    service: str | None = None  # the OLLAMAMAX_SERVICE in its environment, if any

    def owned_by(self, run_dir: Path) -> bool:
        """Whether the listener belongs to the stack whose run directory this is."""
        return self.run_dir is not None and Path(self.run_dir).resolve() == run_dir.resolve()

    def describe(self) -> str:
        """`pid 123 (user root): python3 -m http.server 8000`."""
        if self.pid is None:
            return "an unknown process (its pid is not visible to this user)"
        return f"pid {self.pid} (user {self.user or '?'}): {self.command or '?'}"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bindable(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers set it)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_Facts = tuple[str | None, str | None, datetime | None, str | None, str | None]


def _process_facts(pid: int) -> _Facts:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            user = proc.username()
            cmdline = proc.cmdline()
            command = " ".join(cmdline) if cmdline else f"[{proc.name()}]"
            started = datetime.fromtimestamp(proc.create_time())
        try:
            environ = proc.environ()
        except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
            environ = {}
        return user, command, started, environ.get(RUN_DIR_ENV), environ.get(SERVICE_ENV)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None, None, None, None, None


def listeners(ports: set[int] | None = None) -> list[Listener]:
    """Every TCP listener (IPv4 and IPv6), optionally only on the given ports."""
    found: list[Listener] = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        port = conn.laddr.port
        if ports is not None and port not in ports:
            continue
        user, command, started, run_dir, service = _process_facts(conn.pid) if conn.pid else (
            None, None, None, None, None)
        found.append(Listener(
            port=port, address=conn.laddr.ip,
            family="IPv6" if conn.family == socket.AF_INET6 else "IPv4",
            pid=conn.pid, user=user, command=command, started=started, run_dir=run_dir,
            service=service))
    found.sort(key=lambda item: (item.port, item.family, item.address, item.pid or 0))
    return found


def who(port: int) -> list[Listener]:
    """Every process listening on `port`, like `lsof -i :PORT`."""
    return listeners({port})
