"""An in-memory supervisord with the event loop's client interface (rpc.SupervisorClient).

The policy tests (tests/unit/test_supervise_replay.py) run the real watcher, orchestrator and
workers against it in milliseconds; the integration tests run them against the real
supervisord, which is how we know this double tells the truth about what they use: programs
that start (a pid, RUNNING), exit (EXITED with a status; killed: negative), stop (STOPPING for
as long as the program takes, then STOPPED), and the readiness and liveness of each process.

Pids start at 5,000,000, above Linux's largest pid (2**22): a signal the code sends to one
reaches nobody.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ollamamax_stack.registry.model import Probe, Registry, Service
from ollamamax_stack.supervise.probes import Check
from ollamamax_stack.supervise.rpc import (
    ALREADY_STARTED,
    BAD_NAME,
    NOT_RUNNING,
    ProcessInfo,
    SupervisorFault,
)

FIRST_PID = 5_000_000
RUNNING = {"STARTING", "RUNNING", "BACKOFF", "STOPPING"}


@dataclass
class Behaviour:
    """How a program's processes behave, from their start on."""

    ready_after: float = 0.0  # seconds from start until the readiness probe passes
    never_ready: bool = False
    healthy: bool = True  # the liveness probe passes
    stop_takes: float = 0.0  # seconds a stop takes (a process that ignores SIGTERM)
    # A program that ends by itself (a task): this long after its start, with `exit_status`;
    # as supervisord with startsecs=0 and autorestart=false, it goes RUNNING -> EXITED.
    exits_after: float | None = None
    exit_status: int = 0


@dataclass
class Program:
    """One supervisord program and its current process."""

    name: str
    state: str = "STOPPED"
    pid: int | None = None
    exitstatus: int = 0
    start: float = 0.0
    stop: float = 0.0
    stopping_until: float = 0.0


@dataclass
class FakeSupervisord:
    """Programs by name, the calls made, and the probes answered from the processes' states."""

    programs: dict[str, Program] = field(default_factory=dict)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # added by a config reload, not yet active
    changed: list[str] = field(default_factory=list)  # changed in the config, until re-added
    next_pid: int = FIRST_PID
    starts: dict[str, int] = field(default_factory=dict)

    def add(self, *names: str) -> None:
        """Programs the config defines."""
        for name in names:
            self.programs.setdefault(name, Program(name))

    def behaviour(self, name: str) -> Behaviour:
        """How program `name` behaves (set fields on it to change that)."""
        return self.behaviours.setdefault(name, Behaviour())

    def _settle(self, program: Program) -> None:
        if program.state == "STOPPING" and time.monotonic() >= program.stopping_until:
            program.state, program.pid, program.stop = "STOPPED", None, time.time()
        ends = self.behaviours.get(program.name, Behaviour()).exits_after
        if program.state == "RUNNING" and ends is not None and time.time() >= program.start + ends:
            program.state, program.pid, program.stop = "EXITED", None, time.time()
            program.exitstatus = self.behaviour(program.name).exit_status

    def _program(self, name: str) -> Program:
        if name not in self.programs:
            raise SupervisorFault(BAD_NAME, f"BAD_NAME: {name}")
        program = self.programs[name]
        self._settle(program)
        return program

    def _info(self, program: Program) -> ProcessInfo:
        return ProcessInfo(name=program.name, state=program.state, pid=program.pid,
                           exitstatus=program.exitstatus, start=program.start,
                           stop=program.stop)

    # -- what a test does to the processes ----------------------------------------------------

    def kill(self, name: str) -> int:
        """kill -9 of the program's process; its pid."""
        program = self._program(name)
        assert program.pid is not None, f"{name} does not run"
        pid = program.pid
        program.state, program.pid, program.exitstatus = "EXITED", None, -9
        program.stop = time.time()
        return pid

    def alive(self, pid: int) -> bool:
        """Whether a process of this supervisord has the pid now."""
        for program in self.programs.values():
            self._settle(program)
            if program.pid == pid and program.state in RUNNING:
                return True
        return False

    def checks(self, registry: Registry, service: Service, probe: Probe, slot: str | None,
               attempt_timeout: float) -> Check:
        """The probes of a service (or slot): answered by the state of its process."""
        name = slot or service.name
        liveness = probe is service.liveness

        async def check() -> bool:
            await asyncio.sleep(0)
            program = self.programs.get(name)
            if program is None:
                return False
            self._settle(program)
            if program.state not in ("STARTING", "RUNNING"):
                return False
            behaviour = self.behaviour(name)
            if liveness:
                return behaviour.healthy
            return (not behaviour.never_ready
                    and time.time() - program.start >= behaviour.ready_after)

        return check

    # -- the client interface -------------------------------------------------------------------

    async def pid(self) -> int:
        return 1

    async def info(self, name: str) -> ProcessInfo:
        return self._info(self._program(name))

    async def all_info(self) -> dict[str, ProcessInfo]:
        for program in self.programs.values():
            self._settle(program)
        return {name: self._info(p) for name, p in self.programs.items()}

    async def start(self, name: str) -> None:
        self.calls.append(("start", name))
        program = self._program(name)
        if program.state in RUNNING:
            raise SupervisorFault(ALREADY_STARTED, f"ALREADY_STARTED: {name}")
        program.state, program.pid, program.start = "RUNNING", self.next_pid, time.time()
        self.next_pid += 1
        self.starts[name] = self.starts.get(name, 0) + 1

    async def stop(self, name: str) -> None:
        self.calls.append(("stop", name))
        program = self._program(name)
        if program.state not in RUNNING:
            raise SupervisorFault(NOT_RUNNING, f"NOT_RUNNING: {name}")
        program.state = "STOPPING"
        program.stopping_until = time.monotonic() + self.behaviour(name).stop_takes
        self._settle(program)

    async def reload(self) -> tuple[list[str], list[str], list[str]]:
        self.calls.append(("reload", ""))
        return list(self.pending), list(self.changed), []

    async def add_group(self, name: str) -> None:
        self.calls.append(("add_group", name))
        for waiting in (self.pending, self.changed):
            if name in waiting:
                waiting.remove(name)
        self.add(name)

    async def remove_group(self, name: str) -> None:
        self.calls.append(("remove_group", name))
        self.programs.pop(name, None)
