"""The stack as a whole: `up` (pre-flight, supervisord, ordered start) and `down`.

One `up` or `down` at a time per run directory (`lock.stack_lock`). `down` needs neither the
run directory nor a free byte on its disk: it finds the stack's processes by their marks.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field

from ollamamax_stack.dependents.privileges import restore_run_dir
from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.hostports import bindable, who
from ollamamax_stack.notify import notify
from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise import daemon, events, holder, sweep, workers
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.config import WATCHER
from ollamamax_stack.supervise.context import Emit, context
from ollamamax_stack.supervise.lock import stack_lock
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.machine import Event, Status
from ollamamax_stack.supervise.orchestrator import Orchestrator, service_state, targets
from ollamamax_stack.supervise.outcome import Outcome
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.preflight import preflight
from ollamamax_stack.supervise.rpc import (
    ALREADY_STARTED,
    BAD_NAME,
    ProcessInfo,
    Supervisor,
    SupervisorFault,
)

FAILED_LOG_LINES = 20
WATCHER_STOP_TIMEOUT = 10.0


class PreflightFailed(OllamamaxError):
    """A pre-flight check refused the start; nothing was started (exit 1)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        # A finding of a line in a file (an env file's port) names it: file:line: message.
        lines = "; ".join(f"{f.where}: {f.message}" if f.line else f.message for f in findings)
        super().__init__(f"not starting: {lines}")


class StackFileError(OllamamaxError):
    """A file of the run directory could not be read or written (a full disk...): one line."""

    def __init__(self, exc: OSError, run_dir: str) -> None:
        where = exc.filename or f"a file in {run_dir}"
        super().__init__(f"{where}: {exc.strerror or exc}")


@dataclass
class UpResult:
    """How `up` ended."""

    state: st.State
    outcomes: dict[str, Outcome]
    failed: list[str] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)  # last lines of each failed service
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every required service is ready."""
        return not self.failed


@dataclass
class DownResult:
    """What `down` found and ended."""

    was_running: bool
    ended: int  # stray processes ended after supervisord was gone
    leftovers: list[str]  # processes that would not die
    busy_ports: list[str]  # managed ports still held, with their holder


def up(registry: Registry, names: list[str], *, timeout: float | None = None,
       keep_going: bool = False, check: bool = True, emit: Emit | None = None,
       watch: bool = False) -> UpResult:
    """Bring the named services (and their dependencies) up; supervisord's watcher keeps them up
    (and, with `watch`, rolls a service when a file of its `watch` globs is saved)."""
    paths = RunPaths(registry.run_dir)
    try:
        paths.prepare()
        with stack_lock(paths):
            return _up(registry, names, timeout=timeout, keep_going=keep_going, check=check,
                       emit=emit, watch=watch)
    except OSError as exc:
        raise StackFileError(exc, str(paths.run_dir)) from None


def _up(registry: Registry, names: list[str], *, timeout: float | None, keep_going: bool,
        check: bool, emit: Emit | None, watch: bool) -> UpResult:
    shown = emit or (lambda name, message: None)

    def emitting(name: str, message: str) -> None:
        shown(name, message)
        notify(f"STATUS={name}: {message}")

    emit = emitting
    paths = RunPaths(registry.run_dir)
    client = daemon.connect(paths)
    if client is None:
        _end_unsupervised(paths, shown)
    running = client.all_info() if client else {}
    wanted = targets(registry, names)
    holding = client is not None and holder.running(client)
    fresh = [registry.services[n] for n in wanted
             if not _is_running(registry.services[n], running)
             # ports the stack's holder keeps bound are ours, not taken
             and not (holding and workers.held(registry.services[n]))]
    warnings: list[Finding] = []
    if check:
        found = preflight(registry, fresh)
        if found.errors:
            raise PreflightFailed(found.errors)
        warnings = found.warnings
        for finding in warnings:  # before anything starts, where a reader looks first
            shown("", f"warning: {finding.message}")
    _ensure_secret(paths)
    launched: subprocess.Popen[bytes] | None = None
    try:
        if client is None:
            daemon.write_config(registry)
            _forget_supervision(paths)
            launched = daemon.launch(paths)
            client = daemon.wait_until_answering(paths, launched)
        elif daemon.write_config(registry):
            daemon.update(client)
        holder.wait_ready(registry, client)
        orchestrator = Orchestrator(context(registry, client.asynchronous(), emit=emit,
                                            timeout=timeout))
        return _start(registry, orchestrator, client, names, wanted, keep_going, launched,
                      warnings, watch)
    except (OSError, OllamamaxError):
        if launched is not None:  # nothing of a start that failed half-way stays behind
            down(registry, timeout=5.0, emit=emit)
        raise


def _start(registry: Registry, orchestrator: Orchestrator, client: Supervisor, names: list[str],
           wanted: list[str], keep_going: bool, launched: subprocess.Popen[bytes] | None,
           warnings: list[Finding], watch: bool) -> UpResult:
    paths = RunPaths(registry.run_dir)
    with st.locked(paths) as state:
        state.phase = "starting"
        state.supervisord_pid = client.pid()
        state.socket = str(paths.socket)
        state.config, state.offset, state.profile = (str(registry.source), registry.offset,
                                                     registry.profile)
        state.watch = watch or (launched is None and state.watch)  # a later `up` keeps it on
        for name in wanted:
            # A task that completed stays so on a running stack: `restart NAME` runs it again.
            if (launched or name not in state.services
                    or state.services[name].state not in (Status.READY, Status.COMPLETED)):
                previous = state.services.get(name)
                entry = service_state(registry, registry.services[name])
                if previous is not None:
                    entry.restarts = previous.restarts
                state.services[name] = entry
    notify(f"STATUS=starting {len(wanted)} services")
    outcomes = asyncio.run(orchestrator.start(names, keep_going))
    failed = [n for n in wanted if not outcomes[n].ready and not registry.services[n].optional]
    result = UpResult(state=st.load(paths), outcomes=outcomes, failed=failed, warnings=warnings)
    if failed and not keep_going:
        result.logs = {n: tail(paths.log(n), FAILED_LOG_LINES) for n in failed
                       if registry.services[n].managed}
        if launched is not None:
            down(registry, timeout=5.0, emit=orchestrator.emit)
        else:
            asyncio.run(orchestrator.stop(wanted, timeout=5.0))
        result.state = st.load(paths)
        return result
    with st.locked(paths) as state:
        state.phase = "running"
    ensure_watcher(registry)
    result.state = st.load(paths)
    return result


def _forget_supervision(paths: RunPaths) -> None:
    """Nothing of an earlier supervisord runs: its `ready` must not make a new watcher act."""
    if not paths.state.exists():
        return
    moved: list[Event] = []
    with st.locked(paths) as state:
        state.phase = "down"
        for entry in state.services.values():
            if not entry.external and entry.state != Status.STOPPED:
                entry.pid = None
                moved.append(entry.move(Status.STOPPED, "stack is down"))
    for event in moved:
        events.append(paths.run_dir, event)


def _end_unsupervised(paths: RunPaths, shown: Emit) -> None:
    """End what runs of the stack without its supervisord, so the new one supervises it all."""
    left = sweep.stack_processes(paths.run_dir)
    if left:
        shown("", f"ending {len(left)} process(es) of the stack left running without "
                  "supervisord")
        sweep.end(left, timeout=5.0)


def _is_running(service: Service, infos: dict[str, ProcessInfo]) -> bool:
    if workers.held(service):
        return bool(workers.active(service, infos))
    return service.name in infos and infos[service.name].running


def _ensure_secret(paths: RunPaths) -> None:
    """Create the stack's one JWT secret (mode 0600) before any service races to it."""
    from ollamamax_stack.services.common.secret import SECRET_FILE_NAME, ensure_secret

    ensure_secret(paths.run_dir / SECRET_FILE_NAME)


def ensure_watcher(registry: Registry) -> None:
    """Start supervisord's watcher when it does not run (it gave up, or was stopped)."""
    client = daemon.connect(RunPaths(registry.run_dir))
    if client is None:
        return
    try:
        if not client.info(WATCHER).running:
            client.start(WATCHER)
    except SupervisorFault as fault:
        if fault.code not in (BAD_NAME, ALREADY_STARTED):
            raise


def stop_watcher(registry: Registry) -> None:
    """Stop the watcher of a running stack (`reload` starts it again on the new registry)."""
    client = daemon.connect(RunPaths(registry.run_dir))
    if client is not None:
        _stop_watcher(client)


def _stop_watcher(client: Supervisor) -> None:
    """Stop the watcher first, so that nothing restarts what `down` stops."""
    try:
        client.stop(WATCHER)
        deadline = time.monotonic() + WATCHER_STOP_TIMEOUT
        while client.info(WATCHER).running and time.monotonic() < deadline:
            time.sleep(0.02)
    except SupervisorFault as fault:
        if fault.code != BAD_NAME:
            raise


def down(registry: Registry, *, timeout: float = 10.0, emit: Emit | None = None) -> DownResult:
    """Stop in reverse order, end supervisord and any stray, and check every port is free."""
    paths = RunPaths(registry.run_dir)
    with stack_lock(paths, create=False):
        return _down(registry, timeout, emit or (lambda name, message: None))


def _down(registry: Registry, timeout: float, emit: Emit) -> DownResult:
    paths = RunPaths(registry.run_dir)
    state = st.load(paths)
    sessions = {pid for pid in [sweep.verified_session(state.supervisord_pid, paths.run_dir)]
                if pid}
    was_running = bool(sessions)
    client = daemon.connect(paths)
    if client is not None:
        was_running = True
        notify("STOPPING=1")
        _stop_watcher(client)
        _record(paths, "stopping")
        infos = client.all_info()
        names = [n for n in infos if infos[n].running and n != WATCHER]
        orchestrator = Orchestrator(context(registry, client.asynchronous(), emit=emit,
                                            best_effort=True))
        asyncio.run(orchestrator.stop(list(dict.fromkeys([*state.services, *names])),
                                      timeout=timeout))
        supervisord = client.pid()
        client.shutdown()
        sweep.wait_gone(supervisord, 10.0)
    strays = sweep.stack_processes(paths.run_dir, sessions)
    leftovers = sweep.end(strays, timeout=min(timeout, 5.0))
    was_running = was_running or bool(strays)
    ports = {(registry.bind_host(registry.services[n]) if n in registry.services else "127.0.0.1",
              port) for n, s in state.services.items() if not s.external
             for port in s.ports.values()}
    ports |= {(registry.bind_host(s), p) for s in registry.managed for p in s.port_map.values()}
    busy = _busy_ports(ports)
    _record(paths, "down")
    restore_run_dir(paths.run_dir)  # PostgreSQL's user may no longer enter it
    try:
        if paths.socket.parent != paths.run_dir:
            paths.socket.unlink(missing_ok=True)
    except OSError:
        pass
    return DownResult(was_running, len(strays), [f"pid {p.pid}" for p in leftovers], busy)


def _record(paths: RunPaths, phase: st.Phase) -> None:
    """Write the phase when the run dir and its disk allow it; `down` never depends on it."""
    if not paths.state.exists():
        return
    stopped: list[Event] = []
    try:
        with st.locked(paths) as current:
            current.phase = phase
            if phase == "down":
                current.supervisord_pid = current.watcher_pid = None
                for entry in current.services.values():
                    entry.pid = None
                    if not entry.external:
                        was = entry.state
                        event = entry.move(Status.STOPPED, "stack is down")
                        if was != Status.STOPPED:
                            stopped.append(event)
        for event in stopped:
            events.append(paths.run_dir, event)
    except OSError:
        pass


def _busy_ports(ports: set[tuple[str, int]]) -> list[str]:
    deadline = time.monotonic() + 2.0
    pending = set(ports)
    while pending:
        pending = {(h, p) for h, p in pending if not bindable(h, p)}
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    busy = []
    for host, port in sorted(pending, key=lambda item: item[1]):
        holders = who(port)
        named = "; ".join(h.describe() for h in holders) or "an unknown process"
        busy.append(f"{host}:{port} is still held by {named}")
    return busy
