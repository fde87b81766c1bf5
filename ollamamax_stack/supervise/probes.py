"""Readiness and liveness probes: http (2xx), tcp connect, exec (exit 0), log (regex on output)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ollamamax_stack.handoff.paths import probe_prefix, probe_socket
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.model import Probe, Registry, Service
from ollamamax_stack.supervise.logstamp import text_of

# Probe every `period` for this long (so readiness is seen within tens of milliseconds), then
# every SLOW_PERIOD: a slow starter should not be hammered for minutes.
FAST_PHASE = 10.0
SLOW_PERIOD = 0.25
# A silent starter among many is probed less often: every `period` while at most QUIET_SHARE
# services wait at once, up to QUIET_MAX times `period` with more; its log is looked at (a
# stat) every LOOK_PERIOD meanwhile, and a line it writes brings the next probe forward.
QUIET_SHARE = 4
QUIET_MAX = 4.0
LOOK_PERIOD = 0.01
MAX_STATUS_LINE = 4096  # bytes read for an HTTP status line before giving up on it

Check = Callable[[], Awaitable[bool]]
# (registry, service, probe, slot program or None, attempt timeout) -> one attempt's coroutine.
CheckMaker = Callable[[Registry, Service, Probe, "str | None", float], Check]


async def _exchange(family: int, address: Any, request: bytes | None, timeout: float) -> bytes:
    """Connect (and send `request`, reading up to the first line of the answer) on a bare
    non-blocking socket: a probe runs every few tens of milliseconds per starting service, and
    streams (transport, protocol, reader, writer, a task for each wait_for) cost several times
    the system calls themselves. b"" when the peer closed without a line."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, address)
            if request is None:
                return b""
            await loop.sock_sendall(sock, request)
            head = b""
            while b"\n" not in head and len(head) < MAX_STATUS_LINE:
                chunk = await loop.sock_recv(sock, 1024)
                if not chunk:
                    break
                head += chunk
            return head.split(b"\n", 1)[0]
    finally:
        sock.close()


def _address(host: str, port: int) -> tuple[int, Any] | None:
    """(family, address) for an IP literal; None for a name (resolved by the streams path)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return (socket.AF_INET6, (host, port)) if ":" in host else (socket.AF_INET, (host, port))


def _status(line: bytes) -> int | None:
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def _get(path: str, host_header: str) -> bytes:
    return (f"GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: ollamamax-probe"
            "\r\nConnection: close\r\n\r\n").encode()


async def probe_tcp(host: str, port: int, timeout: float) -> bool:
    """Whether host:port accepts a connection."""
    address = _address(host, port)
    try:
        if address is not None:
            await _exchange(*address, None, timeout)
            return True
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def _http_status(host: str, port: int, path: str, timeout: float) -> int | None:
    name = f"[{host}]" if ":" in host else host
    request = _get(path, f"{name}:{port}")
    address = _address(host, port)
    if address is not None:
        return _status(await _exchange(*address, request, timeout))
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    return _status(line)


async def probe_http(host: str, port: int, path: str, timeout: float) -> bool:
    """Whether GET path answers 2xx."""
    try:
        status = await _http_status(host, port, path, timeout)
    except (TimeoutError, OSError, ValueError):
        return False
    return status is not None and 200 <= status < 300


async def probe_exec(command: str, env: dict[str, str], cwd: Path, timeout: float) -> bool:
    """Whether a shell command exits 0 (run with the service's environment)."""
    process = await asyncio.create_subprocess_shell(
        command, env={**os.environ, **env}, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        return await asyncio.wait_for(process.wait(), timeout) == 0
    except TimeoutError:
        process.kill()
        await process.wait()
        return False


@dataclass
class LogWatch:
    """Searches a service's log for a pattern, from where the log stood when the service started."""

    path: Path
    pattern: re.Pattern[str]
    offset: int

    @classmethod
    def from_now(cls, path: Path, pattern: str) -> LogWatch:
        """Watch only what the service writes from now on."""
        try:
            offset = path.stat().st_size
        except OSError:
            offset = 0
        return cls(path, re.compile(pattern), offset)

    async def check(self) -> bool:
        """Whether the pattern appeared (lines are searched one by one)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return False
        # On the service's own text: a `^ready` must not meet supervisord's stamp first.
        return any(self.pattern.search(text_of(line)) for line in text.splitlines())


def check_for(registry: Registry, service: Service, probe: Probe, env: dict[str, str],
              log: Path, attempt_timeout: float) -> Check:
    """A zero-argument coroutine that runs one attempt of `probe` against `service`."""
    host = registry.connect_host(service)
    port = service.probe_port(probe)
    if probe.kind == "http":
        path = probe.http or "/"
        return lambda: probe_http(host, port, path, attempt_timeout)
    if probe.kind == "exec":
        command = probe.exec or "true"
        return lambda: probe_exec(command, env, registry.root, attempt_timeout)
    if probe.kind == "log":
        return LogWatch.from_now(log, probe.log or "").check
    return lambda: probe_tcp(host, port, attempt_timeout)


def describe(registry: Registry, service: Service, probe: Probe) -> str:
    """`http://127.0.0.1:13100/health/ready`, `tcp 127.0.0.1:6379`, `exec pg_isready`, `log /x/`."""
    host = registry.connect_host(service)
    port = service.probe_port(probe)
    if probe.kind == "http":
        return f"{registry.url(service, probe.port)}{probe.http}"
    if probe.kind == "exec":
        return f"exec {probe.exec!r}"
    if probe.kind == "log":
        return f"log /{probe.log}/"
    return f"tcp {host}:{port}"


class Output:
    """Whether a service's log grew since the last look: a starter that writes a line (most
    servers say when they listen) is worth probing now; one that is silent can wait a little."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return -1

    def grew(self) -> bool:
        """Whether the log changed size since the last call (or since it was watched)."""
        size, before = self._size(), self.size
        self.size = size
        return size != before


class _Waiting:
    """How many readiness waits this process runs at once: each probe costs the service it
    probes as much as the prober, so 15 services starting together on two cores should not
    each be probed every 50 ms while they are silent."""

    count = 0

    @classmethod
    def quiet(cls, pause: float) -> float:
        """The pause between probes of a silent starter: `pause` for up to QUIET_SHARE starters
        at once, then growing with their number, up to QUIET_MAX times `pause`."""
        return pause * min(QUIET_MAX, max(1.0, cls.count / QUIET_SHARE))


async def wait_until(check: Check, timeout: float, period: float,
                     gone: Callable[[], Awaitable[str | None]] | None = None,
                     output: Output | None = None) -> str | None:
    """Run `check` until it passes (None), time runs out, or `gone()` says why it never will.
    With `output` (the service's log), the next probe comes as soon as the log grows (never
    sooner than `period` after the last one), else after the quiet pause (ARCHITECTURE §2)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    _Waiting.count += 1
    try:
        while True:
            if await check():
                return None
            if gone is not None:
                why = await gone()
                if why:
                    return why
            now = loop.time()
            if now >= deadline:
                return f"not ready after {timeout:g}s"
            pause = period if now - start < FAST_PHASE else max(SLOW_PERIOD, period)
            if output is None:
                await asyncio.sleep(min(pause, deadline - now))
            else:
                await _until_said(output, now + min(pause, deadline - now),
                                  now + min(_Waiting.quiet(pause), deadline - now))
    finally:
        _Waiting.count -= 1


async def _until_said(output: Output, soonest: float, latest: float) -> None:
    """Sleep until `latest`, or until the log has grown once `soonest` has passed."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, soonest - loop.time()))
    while (left := latest - loop.time()) > 0:
        if output.grew():
            return
        await asyncio.sleep(min(LOOK_PERIOD, left))


async def probe_http_unix(path: str, url_path: str, timeout: float) -> bool:
    """Whether GET url_path on a process's own probe socket answers 2xx."""
    try:
        status = _status(await _exchange(socket.AF_UNIX, path, _get(url_path, "localhost"),
                                         timeout))
    except (TimeoutError, OSError):
        return False
    return status is not None and 200 <= status < 300


async def probe_unix(path: str, timeout: float) -> bool:
    """Whether a process's own probe socket accepts a connection."""
    try:
        await _exchange(socket.AF_UNIX, path, None, timeout)
    except (TimeoutError, OSError):
        return False
    return True


def slot_check(registry: Registry, service: Service, probe: Probe, slot: str,
               attempt_timeout: float) -> Check:
    """A probe of one slot's process: http and tcp on its own socket, exec and log as usual."""
    port_name = probe.port or next(iter(service.port_map))
    path = str(probe_socket(probe_prefix(registry.run_dir, slot, service.port_map), port_name))
    if probe.kind == "http":
        url_path = probe.http or "/"
        return lambda: probe_http_unix(path, url_path, attempt_timeout)
    if probe.kind == "tcp":
        return lambda: probe_unix(path, attempt_timeout)
    env = service_environment(registry, service)
    return check_for(registry, service, probe, env, registry.run_dir / "logs" /
                     f"{service.name}.log", attempt_timeout)


def make_check(registry: Registry, service: Service, probe: Probe, slot: str | None,
               attempt_timeout: float) -> Check:
    """The real probe of a service (or of one slot's own process) on this host."""
    if slot is not None:
        return slot_check(registry, service, probe, slot, attempt_timeout)
    # Only an exec probe runs with the service's environment (every stack URL: worth not
    # building for each of 60 services' http probes).
    env = service_environment(registry, service) if (
        probe.kind == "exec" and not service.external) else {}
    log = registry.run_dir / "logs" / f"{service.name}.log"
    return check_for(registry, service, probe, env, log, attempt_timeout)
