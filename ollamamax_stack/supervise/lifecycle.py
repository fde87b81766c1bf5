"""The stack as a whole: `up` (pre-flight, supervisord, ordered start, watcher), `down`, status."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.notify import notify
from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.ports.host import bindable, who
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import daemon, sweep
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.config import SUPERVISOR_ENV
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.orchestrator import Emit, Orchestrator, Outcome, service_state
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.preflight import preflight
from ollamamax_stack.supervise.rpc import Supervisor

FAILED_LOG_LINES = 20


class PreflightFailed(OllamamaxError):
    """A pre-flight check refused the start; nothing was started (exit 1)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        lines = "; ".join(f.message for f in findings)
        super().__init__(f"not starting: {lines}")


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
       keep_going: bool = False, check: bool = True, emit: Emit | None = None) -> UpResult:
    """Bring the named services (and their dependencies) up, leaving a watcher to keep them up."""
    shown = emit or (lambda name, message: None)

    def emitting(name: str, message: str) -> None:
        shown(name, message)
        notify(f"STATUS={name}: {message}")

    emit = emitting
    paths = RunPaths(registry.run_dir)
    paths.prepare()
    client = daemon.connect(paths)
    running = client.all_info() if client else {}
    orchestrator = Orchestrator(registry, client or Supervisor(paths.socket), emit=emit,
                                timeout=timeout)
    targets = orchestrator.targets(names)
    fresh = [registry.services[n] for n in targets
             if not (n in running and running[n].running)]
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
    if client is None:
        daemon.write_config(registry)
        launched = daemon.launch(paths)
        client = daemon.wait_until_answering(paths, launched)
        orchestrator.client = client
    elif daemon.write_config(registry):
        daemon.update(client)
    with st.locked(paths) as state:
        state.phase = "starting"
        state.supervisord_pid = client.pid()
        state.socket = str(paths.socket)
        state.config, state.offset, state.profile = (str(registry.source), registry.offset,
                                                     registry.profile)
        for name in targets:
            if name not in state.services or state.services[name].state != st.READY:
                previous = state.services.get(name)
                entry = service_state(registry, registry.services[name])
                if previous is not None:
                    entry.restarts = previous.restarts
                state.services[name] = entry
    notify(f"STATUS=starting {len(targets)} services")
    outcomes = asyncio.run(orchestrator.start(names, keep_going))
    failed = [n for n in targets if not outcomes[n].ready and not registry.services[n].optional]
    result = UpResult(state=st.load(paths), outcomes=outcomes, failed=failed, warnings=warnings)
    if failed and not keep_going:
        result.logs = {n: tail(paths.log(n), FAILED_LOG_LINES) for n in failed
                       if registry.services[n].managed}
        if launched is not None:
            down(registry, timeout=5.0, emit=emit)
        else:
            orchestrator.stop(targets, timeout=5.0)
        result.state = st.load(paths)
        return result
    with st.locked(paths) as state:
        state.phase = "running"
    ensure_watcher(registry)
    result.state = st.load(paths)
    return result


def _ensure_secret(paths: RunPaths) -> None:
    """Create the stack's one JWT secret (mode 0600) before any service races to it."""
    from ollamamax_stack.services.common.secret import SECRET_FILE_NAME, ensure_secret

    ensure_secret(paths.run_dir / SECRET_FILE_NAME)


def _ours(pid: int | None, run_dir: str) -> psutil.Process | None:
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        return proc if proc.environ().get(SUPERVISOR_ENV) == run_dir else None
    except (psutil.Error, OSError):
        return None


def _watcher(paths: RunPaths) -> psutil.Process | None:
    try:
        pid = int(paths.watcher_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return _ours(pid, str(paths.run_dir))


def ensure_watcher(registry: Registry) -> int:
    """The watcher's pid, starting one (detached, in its own session) when none runs."""
    paths = RunPaths(registry.run_dir)
    current = _watcher(paths)
    if current is not None:
        return current.pid
    env = dict(os.environ)
    env[SUPERVISOR_ENV] = str(paths.run_dir)
    command = [sys.executable, "-m", "ollamamax_stack.supervise.watcher",
               "--config", str(registry.source), "--run-dir", str(paths.run_dir),
               "--offset", str(registry.offset), "--profile", registry.profile]
    with open(paths.watcher_log, "ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                   close_fds=True)
    # Written here too so that a `down` right after `up -d` finds it before it has started.
    paths.watcher_pid.write_text(f"{process.pid}\n")
    with st.locked(paths) as state:
        state.watcher_pid = process.pid
    return process.pid


def _stop_watcher(paths: RunPaths) -> None:
    proc = _watcher(paths)
    if proc is None:
        return
    sweep.end([proc], timeout=5.0)


def down(registry: Registry, *, timeout: float = 10.0, emit: Emit | None = None) -> DownResult:
    """Stop in reverse order, end supervisord and any stray, and check every port is free."""
    emit = emit or (lambda name, message: None)
    paths = RunPaths(registry.run_dir)
    if not paths.run_dir.exists():
        return DownResult(False, 0, [], [])
    state = st.load(paths)
    sessions = {pid for pid in [sweep.verified_session(state.supervisord_pid, paths.run_dir)]
                if pid}
    was_running = bool(sessions) or _watcher(paths) is not None
    _stop_watcher(paths)
    with st.locked(paths) as current:
        current.phase = "stopping"
    client = daemon.connect(paths)
    if client is not None:
        was_running = True
        notify("STOPPING=1")
        infos = client.all_info()
        names = [n for n in infos if infos[n].running]
        orchestrator = Orchestrator(registry, client, emit=emit)
        orchestrator.stop(list(dict.fromkeys([*state.services, *names])), timeout=timeout)
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
    with st.locked(paths) as current:
        current.phase = "down"
        current.supervisord_pid = current.watcher_pid = None
        for entry in current.services.values():
            entry.pid, entry.ready = None, False
            if not entry.external:
                entry.state, entry.reason = st.STOPPED, "stack is down"
    if paths.socket.exists() and paths.socket.parent != paths.run_dir:
        paths.socket.unlink()
    return DownResult(was_running, len(strays), [f"pid {p.pid}" for p in leftovers], busy)


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


def status(registry: Registry) -> st.State:
    """The persisted state corrected by what supervisord says now (no supervisord: down)."""
    paths = RunPaths(registry.run_dir)
    state = st.load(paths)
    client = daemon.connect(paths)
    if client is None:
        state.phase = "down"
        for entry in state.services.values():
            entry.ready, entry.pid = False, None
            if not entry.external and entry.state != st.STOPPED:
                entry.state = st.STOPPED
        return state
    infos = client.all_info()
    for name, entry in state.services.items():
        info = infos.get(name)
        if entry.external or info is None:
            continue
        if info.running:
            entry.pid = info.pid
        elif entry.state in (st.READY, st.STARTING):
            entry.state, entry.ready, entry.pid = st.EXITED, False, None
            entry.reason = f"exited with status {info.exitstatus}"
    return state
