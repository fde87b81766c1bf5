"""supervisord's XML-RPC interface over the Unix socket in the run directory."""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

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


class Supervisor:
    """A client for one supervisord; every failure is a typed error naming the socket."""

    def __init__(self, socket_path: Path, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        transport = SupervisorTransport(None, None, f"unix://{socket_path}")
        self._proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        self._timeout = timeout

    def _call(self, method: str, *args: Any) -> Any:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self._timeout)
        try:
            return getattr(self._proxy, method)(*args)
        except xmlrpc.client.Fault as fault:
            raise SupervisorFault(fault.faultCode, f"supervisord: {method}{args!r}: "
                                  f"{fault.faultString}") from None
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
            raise SupervisorUnreachable(
                f"supervisord does not answer on {self.socket_path} ({exc})") from None
        finally:
            socket.setdefaulttimeout(previous)

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
