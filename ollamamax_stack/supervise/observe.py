"""What runs now: the persisted state, corrected by supervisord, or by the processes themselves.

With supervisord answering, each running service shows the pid that serves its port (not a
wrapping shell). Without it, the stack's processes are found by their marks, so `status` says
"running unsupervised" rather than "down" while anything of the stack still runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from ollamamax_stack.handoff.slots import slots, worker_count
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise import daemon, groups, sweep, workers
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.config import WATCHER
from ollamamax_stack.supervise.machine import Status, WorkerStatus
from ollamamax_stack.supervise.orchestrator import service_state
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.rpc import ProcessInfo, SupervisorUnreachable
from ollamamax_stack.supervise.supervisord import MODULE as SUPERVISORD_MODULE

UNSUPERVISED_REASON = ("supervisord is gone: running unsupervised, nothing restarts it; "
                       "`ollamamax up -d` takes it over")


@dataclass(frozen=True)
class Supervision:
    """The supervisor's own parts: supervisord and its watcher."""

    supervisord_state: str  # running, unreachable (runs, its socket does not answer), gone
    supervisord_pid: int | None
    watcher_state: str  # running, starting, backoff, fatal, stopped, ... or gone
    watcher_pid: int | None

    def as_status(self) -> dict[str, Any]:
        """The `status --json` shape."""
        return {"supervisord": {"state": self.supervisord_state, "pid": self.supervisord_pid},
                "watcher": {"state": self.watcher_state, "pid": self.watcher_pid}}

    def describe(self) -> str:
        """`supervisord: running (pid 1); watcher: running (pid 2)`."""
        def one(state: str, pid: int | None) -> str:
            return state + (f" (pid {pid})" if pid else "")

        return (f"supervisord: {one(self.supervisord_state, self.supervisord_pid)}; "
                f"watcher: {one(self.watcher_state, self.watcher_pid)}")


@dataclass
class StackStatus:
    """The stack's state as `status` shows it, with the supervisor's own parts."""

    state: st.State
    supervision: Supervision


# ports -> the pid listening on each: one scan of the host's sockets (`groups.listening_pids`),
# or a live view's cache of it (a scan costs tens of milliseconds on a busy host).
Listening = Callable[[set[int]], dict[int, int]]


def status(registry: Registry, listening: Listening = groups.listening_pids) -> StackStatus:
    """The persisted state corrected by what supervisord says, or by probing when it is gone."""
    paths = RunPaths(registry.run_dir)
    state = st.load(paths)
    client = daemon.connect(paths)
    if client is not None:
        try:
            infos = client.all_info()
            supervisord = client.pid()
        except SupervisorUnreachable:
            client = None
    if client is None:
        return _without_supervisord(registry, state)
    _correct(registry, state, infos, listening)
    watcher = infos.get(WATCHER)
    return StackStatus(state, Supervision(
        "running", supervisord, watcher.state.lower() if watcher else "absent",
        watcher.pid if watcher and watcher.running else None))


def _correct(registry: Registry, state: st.State, infos: dict[str, ProcessInfo],
             scan: Listening) -> None:
    listening = scan({p for e in state.services.values() if not e.external
                      for p in e.ports.values()})
    for name, entry in state.services.items():
        service = registry.services.get(name)
        if service is not None and workers.held(service) and not entry.external:
            _held(service, entry, infos)
            continue
        info = infos.get(name)
        if entry.external or info is None:
            continue
        if info.running and info.pid:
            entry.pid = groups.serving_pid(info.pid, set(entry.ports.values()), listening)
        elif entry.state in (Status.READY, Status.STARTING, Status.UNRESPONSIVE):
            entry.pid = None
            entry.seen(Status.EXITED, f"exited with status {info.exitstatus}")


def _held(service: Service, entry: st.ServiceState, infos: dict[str, ProcessInfo]) -> None:
    """A held service's workers from supervisord; a worker down makes the service `exited`."""
    serving = workers.active(service, infos)
    count = worker_count(service)
    entry.workers = []
    for worker in range(count):
        now = serving.get(worker)
        entry.workers.append({"name": f"{service.name}:{worker}",
                              "slot": now.name if now else None,
                              "pid": now.pid if now else None,
                              "state": WorkerStatus.SERVING if now else WorkerStatus.DOWN})
        for slot in slots(service):
            info = infos.get(slot.program)
            if slot.worker == worker and info is not None and info.state == "STOPPING":
                entry.workers.append({"name": slot.worker_name, "slot": slot.program,
                                      "pid": info.pid, "state": WorkerStatus.DRAINING})
    entry.pid = serving[0].pid if 0 in serving else None
    if len(serving) < count and entry.state in (Status.READY, Status.STARTING,
                                                 Status.UNRESPONSIVE):
        entry.seen(Status.EXITED, f"{count - len(serving)} of {count} workers down")


def _role(proc: psutil.Process) -> str | None:
    try:
        line = " ".join(proc.cmdline())
    except psutil.Error:
        return None
    if SUPERVISORD_MODULE in line:
        return "supervisord"
    return "watcher" if "supervise.watcher" in line else None


def _without_supervisord(registry: Registry, state: st.State) -> StackStatus:
    """Each service as its processes show it: running unsupervised, or stopped."""
    paths = RunPaths(registry.run_dir)
    found: dict[str, list[psutil.Process]] = {}
    roles: dict[str, int] = {}
    for proc in sweep.stack_processes(paths.run_dir):
        name = sweep.service_of(proc, paths.run_dir)
        if name:
            found.setdefault(name, []).append(proc)
        elif (role := _role(proc)) is not None:
            roles[role] = proc.pid
    if not state.services:  # the run dir is gone: the registry says what could run
        state.services = {s.name: service_state(registry, s) for s in registry.managed}
    supervisord = roles.get("supervisord")
    # A supervisord that runs but does not answer (its socket was deleted, or it is stopped)
    # still supervises; nobody can ask it how.
    label, reason = (Status.RUNNING, f"supervisord (pid {supervisord}) does not answer on "
                     f"{paths.socket}; `ollamamax down` stops the stack") if supervisord else (
        Status.UNSUPERVISED, UNSUPERVISED_REASON)
    running = False
    for name, entry in state.services.items():
        if entry.external:
            continue
        procs = found.get(name)
        if procs:
            ports = set(entry.ports.values())
            serving = [p.pid for p in procs if groups.listens(p, ports)]
            entry.seen(label, reason)
            entry.pid = serving[0] if serving else procs[0].pid
            running = True
        else:
            entry.pid = None
            if entry.state != Status.STOPPED:
                entry.seen(Status.STOPPED, "stack is down")
    state.phase = "running" if running or supervisord else "down"
    watcher = roles.get("watcher")
    return StackStatus(state, Supervision(
        "unreachable" if supervisord else "gone", supervisord,
        "running" if watcher else "gone", watcher))
