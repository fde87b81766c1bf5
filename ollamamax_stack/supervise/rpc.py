"""supervisord's XML-RPC interface over the Unix socket in the run directory.

Two clients share one marshalling: `AsyncSupervisor` for the event loop (the watcher, the
orchestrator), `Supervisor` for the command line's synchronous paths. Each call is one HTTP/1.0
request on its own connection with its own timeout; nothing sets a process-wide default.
"""

from __future__ import annotations

import asyncio
import socket
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from ollamamax_stack.errors import OllamamaxError

# supervisord's Faults (supervisor/xmlrpc.py).
BAD_NAME = 10
NO_FILE = 20
NOT_EXECUTABLE = 21
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70

RUNNING_STATES = {"STARTING", "RUNNING", "BACKOFF", "STOPPING"}


class SupervisorError(OllamamaxError):
    """supervisord could not do what was asked."""


class SupervisorUnreachable(SupervisorError):
    """Nobody answers on the socket: supervisord is not running for this run directory."""


class SupervisorFault(SupervisorError):
    """supervisord refused a call (unknown program, spawn error...)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class ProcessInfo:
    """What supervisord knows about one program."""

    name: str
    state: str  # STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL UNKNOWN
    pid: int | None
    exitstatus: int
    start: float
    stop: float

    @property
    def running(self) -> bool:
        """Whether a process exists for it now."""
        return self.state in RUNNING_STATES and self.pid is not None


def _info(raw: dict[str, Any]) -> ProcessInfo:
    return ProcessInfo(name=str(raw["name"]), state=str(raw["statename"]),
                       pid=int(raw["pid"]) or None, exitstatus=int(raw["exitstatus"]),
                       start=float(raw["start"]), stop=float(raw["stop"]))


def request(method: str, args: tuple[Any, ...]) -> bytes:
    """One XML-RPC call as the bytes of an HTTP/1.0 request (supervisord closes after it)."""
    payload = xmlrpc.client.dumps(args, method, allow_none=False).encode()
    return (b"POST /RPC2 HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)


def response(method: str, args: tuple[Any, ...], raw: bytes, where: Path) -> Any:
    """The value of a whole HTTP response to `request`; a typed error for a fault or garbage."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        raise SupervisorUnreachable(f"supervisord on {where} answered "
                                    f"{head[:80].decode(errors='replace')!r} to {method}")
    try:
        return xmlrpc.client.loads(body, use_builtin_types=True)[0][0]
    except xmlrpc.client.Fault as fault:
        raise SupervisorFault(fault.faultCode, f"supervisord: {method}{args!r}: "
                              f"{fault.faultString}") from None
    except Exception as exc:  # expat's errors have no common base but Exception
        raise SupervisorUnreachable(f"supervisord on {where}: unreadable answer to {method} "
                                    f"({exc})") from None


def _settle(future: asyncio.Future[Any], result: Any = None, *,
            error: BaseException | None = None) -> None:
    """Give a batched call its answer (unless its caller has gone: a cancelled wait)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _unreachable(where: Path, exc: BaseException) -> SupervisorUnreachable:
    said = str(exc) or type(exc).__name__
    return SupervisorUnreachable(f"supervisord does not answer on {where} ({said})")


class SupervisorClient(Protocol):
    """What the event loop's code needs of a supervisord (AsyncSupervisor, or a test double)."""

    async def pid(self) -> int: ...
    async def info(self, name: str) -> ProcessInfo: ...
    async def all_info(self) -> dict[str, ProcessInfo]: ...
    async def start(self, name: str) -> None: ...
    async def stop(self, name: str) -> None: ...
    async def reload(self) -> tuple[list[str], list[str], list[str]]: ...
    async def add_group(self, name: str) -> None: ...
    async def remove_group(self, name: str) -> None: ...


class AsyncSupervisor:
    """A client for one supervisord that never blocks the event loop; errors name the socket."""

    def __init__(self, socket_path: Path, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._queued: dict[str, list[tuple[tuple[Any, ...], asyncio.Future[Any]]]] = {}
        self._sending: dict[str, asyncio.Task[None]] = {}

    async def batched(self, method: str, *args: Any) -> Any:
        """`call`, sent together with the calls of `method` made while the last of them was on
        its way: a layer of 15 services starts in one `system.multicall`, not in 15 requests
        that wait in turn for a supervisord starved of CPU by the processes it just forked."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.setdefault(method, []).append((args, future))
        if method not in self._sending:
            self._sending[method] = loop.create_task(self._send(method))
        return await future

    async def _send(self, method: str) -> None:
        batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        try:
            while batch := self._queued.pop(method, []):
                await self._send_batch(method, batch)
        except BaseException as exc:  # cancelled with its loop, or a bug: nobody waits forever
            for _, future in [*batch, *self._queued.pop(method, [])]:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            raise
        finally:
            del self._sending[method]

    async def _send_batch(self, method: str,
                          batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        if len(batch) == 1:
            calls = None
            args, future = batch[0]
        else:
            calls = [{"methodName": method, "params": list(a)} for a, _ in batch]
        try:
            results = ([await self.call(method, *args)] if calls is None
                       else await self.call("system.multicall", calls))
        except SupervisorError as exc:
            for _, future in batch:
                _settle(future, error=exc)
            return
        for (args, future), result in zip(batch, results, strict=True):
            if calls is not None and isinstance(result, dict) and "faultCode" in result:
                _settle(future, error=SupervisorFault(
                    int(result["faultCode"]),
                    f"supervisord: {method}{args!r}: {result.get('faultString', '')}"))
            else:
                _settle(future, result)

    async def call(self, method: str, *args: Any) -> Any:
        """One XML-RPC call on its own connection, within this client's timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
                try:
                    writer.write(request(method, args))
                    await writer.drain()
                    raw = await reader.read()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as exc:
            raise _unreachable(self.socket_path, exc) from None
        return response(method, args, raw, self.socket_path)

    async def pid(self) -> int:
        """supervisord's own pid (also a liveness check of the daemon)."""
        return int(await self.call("supervisor.getPID"))

    async def info(self, name: str) -> ProcessInfo:
        """One program's state."""
        return _info(await self.batched("supervisor.getProcessInfo", name))

    async def all_info(self) -> dict[str, ProcessInfo]:
        """Every program's state by name."""
        return {i.name: i for i in map(_info, await self.call("supervisor.getAllProcessInfo"))}

    async def start(self, name: str) -> None:
        """Spawn a program without waiting: readiness is probed by the orchestrator."""
        await self.batched("supervisor.startProcess", name, False)

    async def stop(self, name: str) -> None:
        """Ask supervisord to stop a program (SIGTERM to its group) without waiting."""
        try:
            await self.call("supervisor.stopProcess", name, False)
        except SupervisorFault as fault:
            if fault.code != NOT_RUNNING:
                raise

    async def reload(self) -> tuple[list[str], list[str], list[str]]:
        """Re-read the config file: (added, changed, removed) group names."""
        added, changed, removed = (await self.call("supervisor.reloadConfig"))[0]
        return list(added), list(changed), list(removed)

    async def add_group(self, name: str) -> None:
        """Activate a group added to the config."""
        await self.call("supervisor.addProcessGroup", name)

    async def remove_group(self, name: str) -> None:
        """Drop a group (its process must be stopped)."""
        await self.call("supervisor.removeProcessGroup", name)


class Supervisor:
    """The same client for synchronous callers (the command line): a timeout per connection."""

    def __init__(self, socket_path: Path, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def asynchronous(self) -> AsyncSupervisor:
        """The event loop's client of the same supervisord."""
        return AsyncSupervisor(self.socket_path, self.timeout)

    def _call(self, method: str, *args: Any) -> Any:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.timeout)
                conn.connect(str(self.socket_path))
                conn.sendall(request(method, args))
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise _unreachable(self.socket_path, exc) from None
        return response(method, args, b"".join(chunks), self.socket_path)

    def pid(self) -> int:
        """supervisord's own pid (also a liveness check of the daemon)."""
        return int(self._call("supervisor.getPID"))

    def alive(self) -> bool:
        """Whether supervisord answers and is running (not shutting down)."""
        try:
            state = self._call("supervisor.getState")
        except SupervisorUnreachable:
            return False
        return cast(dict[str, Any], state).get("statename") == "RUNNING"

    def info(self, name: str) -> ProcessInfo:
        """One program's state."""
        return _info(self._call("supervisor.getProcessInfo", name))

    def all_info(self) -> dict[str, ProcessInfo]:
        """Every program's state by name."""
        return {i.name: i for i in map(_info, self._call("supervisor.getAllProcessInfo"))}

    def start(self, name: str) -> None:
        """Spawn a program without waiting: readiness is probed by the orchestrator."""
        self._call("supervisor.startProcess", name, False)

    def stop(self, name: str) -> None:
        """Ask supervisord to stop a program (SIGTERM to its group) without waiting."""
        try:
            self._call("supervisor.stopProcess", name, False)
        except SupervisorFault as fault:
            if fault.code != NOT_RUNNING:
                raise

    def reload(self) -> tuple[list[str], list[str], list[str]]:
        """Re-read the config file: (added, changed, removed) group names."""
        added, changed, removed = self._call("supervisor.reloadConfig")[0]
        return list(added), list(changed), list(removed)

    def add_group(self, name: str) -> None:
        """Activate a group added to the config."""
        self._call("supervisor.addProcessGroup", name)

    def remove_group(self, name: str) -> None:
        """Drop a group (its process must be stopped)."""
        self._call("supervisor.removeProcessGroup", name)

    def shutdown(self) -> None:
        """Ask supervisord to stop everything and exit."""
        try:
            self._call("supervisor.shutdown")
        except SupervisorUnreachable:
            pass
