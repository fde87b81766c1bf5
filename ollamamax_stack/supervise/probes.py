"""Readiness and liveness probes: http (2xx), tcp connect, exec (exit 0), log (regex on output)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.handoff.paths import probe_prefix, probe_socket
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.model import Probe, Registry, Service
from ollamamax_stack.supervise.logstamp import text_of

# Probe every `period` for this long (so readiness is seen within tens of milliseconds), then
# every SLOW_PERIOD: a slow starter should not be hammered for minutes.
FAST_PHASE = 10.0
SLOW_PERIOD = 0.25

Check = Callable[[], Awaitable[bool]]
# (registry, service, probe, slot program or None, attempt timeout) -> one attempt's coroutine.
CheckMaker = Callable[[Registry, Service, Probe, "str | None", float], Check]


async def probe_tcp(host: str, port: int, timeout: float) -> bool:
    """Whether host:port accepts a connection."""
    try:
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
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        name = f"[{host}]" if ":" in host else host
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {name}:{port}\r\nUser-Agent: ollamamax-probe"
                     "\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


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


async def wait_until(check: Check, timeout: float, period: float,
                     gone: Callable[[], Awaitable[str | None]] | None = None) -> str | None:
    """Run `check` until it passes (None), time runs out, or `gone()` says why it never will."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
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
        await asyncio.sleep(min(pause, deadline - now))


async def probe_http_unix(path: str, url_path: str, timeout: float) -> bool:
    """Whether GET url_path on a process's own probe socket answers 2xx."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    except (TimeoutError, OSError):
        return False
    try:
        writer.write(f"GET {url_path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: ollamamax-probe"
                     "\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (TimeoutError, OSError):
        return False
    finally:
        writer.close()
    parts = line.split()
    return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 300


async def probe_unix(path: str, timeout: float) -> bool:
    """Whether a process's own probe socket accepts a connection."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
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
    env = {} if service.external else service_environment(registry, service)
    log = registry.run_dir / "logs" / f"{service.name}.log"
    return check_for(registry, service, probe, env, log, attempt_timeout)
