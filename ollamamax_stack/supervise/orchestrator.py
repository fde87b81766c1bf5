"""Start services in dependency order gated on readiness, and stop them in reverse order."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

from ollamamax_stack.errors import EXIT_UNAVAILABLE
from ollamamax_stack.handoff.slots import parse_program
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.graph import stop_order, with_dependencies
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.config import missing_executable
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.outcome import Outcome, ended, pid_alive
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.probes import check_for, describe, wait_until
from ollamamax_stack.supervise.rpc import (
    ALREADY_STARTED,
    SPAWN_ERROR,
    Supervisor,
    SupervisorFault,
)
from ollamamax_stack.supervise.workers import Workers, held, programs_of, serving_pids

# (service name or "", message): progress the command layer prints.
Emit = Callable[[str, str], None]


def service_state(registry: Registry, service: Service) -> st.ServiceState:
    """A fresh persisted entry for a service."""
    return st.ServiceState(name=service.name, ports=service.port_map, url=registry.url(service),
                           external=service.external, optional=service.optional,
                           depends_on=list(service.depends_on))


class Orchestrator:
    """Brings services of one registry up and down through one supervisord."""

    def __init__(self, registry: Registry, client: Supervisor, *, emit: Emit | None = None,
                 timeout: float | None = None) -> None:
        self.registry = registry
        self.client = client
        self.paths = RunPaths(registry.run_dir)
        self.emit: Emit = emit or (lambda name, message: None)
        self.timeout = timeout
        # down and the watcher must go on when the state cannot be written (a full disk).
        self.best_effort = False
        self.last_error: OSError | None = None  # the latest write that best effort skipped
        active = {s.name for s in registry.active}
        self.deps = {s.name: [d for d in s.depends_on if d in active] for s in registry.active}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.workers = Workers(self)

    def note(self, name: str, change: st.Change) -> None:
        """Record a change of one service's state (and go on without it when best effort)."""
        if not self.best_effort:
            st.update_service(self.paths, name, change)
        elif (error := st.try_update_service(self.paths, name, change)) is not None:
            self.last_error = error

    def targets(self, names: list[str]) -> list[str]:
        """The named services and their dependencies (every active service when none is named)."""
        for name in names:
            service = self.registry.service(name)
            if not service.in_profile(self.registry.profile):
                from ollamamax_stack.errors import UsageError

                raise UsageError(f"service {name!r} is not in profile {self.registry.profile!r} "
                                 f"(its profiles: {', '.join(service.profiles)})")
        return with_dependencies(self.deps, names or list(self.deps))

    async def settled_exit(self, name: str, timeout: float = 2.0) -> str:
        """Wait until supervisord has noticed a program's exit; how it ended, in words."""
        deadline = time.monotonic() + timeout
        service = self.registry.services.get(name)
        if service is not None and held(service):
            infos = self.client.all_info()
            while serving_pids(service, infos) is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                infos = self.client.all_info()
            down = [infos[p] for p in programs_of(service) if p in infos
                    and infos[p].state not in ("STARTING", "RUNNING", "BACKOFF", "STOPPING")]
            if not down:
                return "a worker ended"
            last = max(down, key=lambda i: i.stop)
            return f"worker {last.name} {ended(last)}"
        info = self.client.info(name)
        while info.running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            info = self.client.info(name)
        return ended(info)

    # -- bringing one service up ------------------------------------------------------------

    def _exited(self, name: str, pid: int | None) -> str | None:
        if pid is not None and pid_alive(pid):
            return None
        info = self.client.info(name)
        if info.running:
            return None  # replaced meanwhile, or supervisord has not reaped it yet: next time
        if info.exitstatus == EXIT_UNAVAILABLE:
            said = [line.strip() for line in tail(self.paths.log(name), 5) if line.strip()]
            return f"is unavailable here: {said[-1] if said else 'a program it needs is missing'}"
        return f"{ended(info)} before it was ready"

    async def bring_up(self, service: Service) -> Outcome:
        """Start one managed service and wait for its readiness probe (or its exit, or timeout)."""
        missing = missing_executable(self.registry, service)
        if missing:
            return Outcome(False, f"its command {missing!r} is not installed (not found on PATH)",
                           unavailable=True)
        if held(service):
            self.note(service.name, _starting(None))
            return await self.workers.bring_up(service)
        probe = service.readiness
        timeout = self.timeout or probe.timeout
        env = service_environment(self.registry, service)
        check = check_for(self.registry, service, probe, env, self.paths.log(service.name),
                          attempt_timeout=min(1.0, timeout))
        started = time.monotonic()
        try:
            self.client.start(service.name)
        except SupervisorFault as fault:
            if fault.code != ALREADY_STARTED:
                return Outcome(False, self._spawn_failure(service, fault))
        pid = self.client.info(service.name).pid
        self.note(service.name, _starting(pid))
        why = await wait_until(check, timeout, probe.period,
                               lambda: self._exited(service.name, pid))
        if why is not None:
            info = self.client.info(service.name)
            unavailable = not info.running and info.exitstatus == EXIT_UNAVAILABLE
            return Outcome(False, why, pid=pid, unavailable=unavailable)
        return Outcome(True, ready_ms=round((time.monotonic() - started) * 1000), pid=pid)

    def _spawn_failure(self, service: Service, fault: SupervisorFault) -> str:
        if fault.code == SPAWN_ERROR:
            log = self.paths.log(service.name)
            try:
                with open(log, "ab"):
                    pass
            except OSError as exc:
                return f"supervisord could not start it: cannot write its log {log}: " + (
                    exc.strerror or str(exc))
        return f"supervisord could not start it: {fault}"

    async def probe_external(self, service: Service) -> Outcome:
        """Wait for an external service; an optional one gets a single look."""
        probe = service.readiness
        check = check_for(self.registry, service, probe, {}, self.paths.log(service.name),
                          attempt_timeout=min(1.0, probe.timeout))
        started = time.monotonic()
        if service.optional:
            ok = await check()
            why = None if ok else "no answer"
        else:
            why = await wait_until(check, self.timeout or probe.timeout, probe.period)
        if why is None:
            return Outcome(True, ready_ms=round((time.monotonic() - started) * 1000))
        where = describe(self.registry, service, probe)
        return Outcome(False, f"not reachable at {where} ({why})")

    # -- the whole start --------------------------------------------------------------------

    async def start(self, names: list[str], keep_going: bool = False) -> dict[str, Outcome]:
        """Start `names` (with dependencies): each as soon as its dependencies are ready."""
        targets = self.targets(names)
        done = {name: asyncio.Event() for name in targets}
        results: dict[str, Outcome] = {}
        self._tasks = {name: asyncio.create_task(
            self._start_one(name, done, results, keep_going)) for name in targets}
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for name in targets:
            if name not in results:
                results[name] = Outcome(False, "not started: the start was stopped")
                self.note(name, _mark(st.SKIPPED, results[name].reason))
        return results

    def _abort(self, failed: str) -> None:
        for name, task in self._tasks.items():
            if name != failed and not task.done():
                task.cancel()

    async def _start_one(self, name: str, done: dict[str, asyncio.Event],
                         results: dict[str, Outcome], keep_going: bool) -> None:
        service = self.registry.services[name]
        try:
            for dep in self.deps[name]:
                if dep in done:
                    await done[dep].wait()
            blocked = [d for d in self.deps[name] if d in results and not results[d].ready
                       and not self.registry.services[d].optional]
            if blocked:
                outcome = Outcome(False, f"not started: it needs {blocked[0]}, which is not ready")
                results[name] = outcome
                self.note(name, _mark(st.SKIPPED, outcome.reason))
                return
            outcome = await self._attempt(service)
            results[name] = outcome
            if outcome.ready:
                self.emit(name, f"ready after {outcome.ready_ms} ms")
            elif service.optional:
                self.emit(name, f"{outcome.reason} (optional: the stack runs degraded)")
            else:
                self.emit(name, f"failed: {outcome.reason}")
                if not keep_going:
                    self._abort(name)
        finally:
            done[name].set()

    async def _attempt(self, service: Service) -> Outcome:
        if service.external:
            outcome = await self.probe_external(service)
            failure = st.UNREACHABLE
        else:
            current = st.load(self.paths).services.get(service.name)
            if held(service):
                pids = serving_pids(service, self.client.all_info())
                if current and current.state == st.READY and pids:
                    return Outcome(True, ready_ms=current.ready_ms, pid=current.pid)
            else:
                info = self.client.info(service.name)
                if (current and current.state == st.READY and info.running
                        and info.pid == current.pid):
                    return Outcome(True, ready_ms=current.ready_ms, pid=info.pid)  # already up
            self.emit(service.name, "starting")
            outcome = await self.bring_up(service)
            failure = st.SKIPPED if outcome.unavailable else st.FAILED
        self.note(service.name, _settle(outcome, failure))
        return outcome

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, names: list[str], timeout: float = 10.0) -> None:
        """Stop managed services in reverse dependency order; SIGKILL a group after `timeout`."""
        managed = [n for n in names if n in self.registry.services
                   and self.registry.services[n].managed]
        graph = {n: [d for d in self.deps.get(n, []) if d in managed] for n in managed}
        for layer in stop_order(graph):
            self._stop_layer(layer, timeout)

    def _stop_layer(self, layer: list[str], timeout: float) -> None:
        # Marked stopped before the signal, so the watcher never takes the exit for a crash.
        for name in layer:
            self.note(name, _mark(st.STOPPED, "stopped"))
        waiting: dict[str, int] = {}
        infos = self.client.all_info()
        for name in layer:
            stopping = False
            for program in programs_of(self.registry.services[name]):
                info = infos.get(program)
                if info is not None and info.running and info.pid:
                    waiting[program] = info.pid
                    stopping = True
                    self.client.stop(program)
                    try:  # as systemd does: a stopped (SIGSTOP) process must wake to see SIGTERM
                        os.killpg(info.pid, signal.SIGCONT)
                    except OSError:
                        pass
            if stopping:
                self.emit(name, "stopping")
        deadline = time.monotonic() + timeout
        killed = False
        while waiting:
            for name in list(waiting):
                if not self.client.info(name).running:
                    del waiting[name]
            if not waiting or (killed and time.monotonic() > deadline):
                break
            if not killed and time.monotonic() > deadline:
                for program, pid in waiting.items():
                    slot = parse_program(program)
                    name = slot.service if slot and slot.service in self.registry.services else (
                        program)
                    self.emit(name, f"did not stop within {timeout:g}s: SIGKILL to its group")
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                killed, deadline = True, time.monotonic() + 5.0
            time.sleep(0.02)


def _starting(pid: int | None) -> Callable[[st.ServiceState], None]:
    at = time.time()

    def change(entry: st.ServiceState) -> None:
        entry.pid, entry.ready, entry.started_at = pid, False, at
        if entry.state not in (st.RESTARTING,):
            entry.state = st.STARTING

    return change


def _mark(state: str, reason: str | None) -> Callable[[st.ServiceState], None]:
    def change(entry: st.ServiceState) -> None:
        entry.state, entry.reason, entry.ready, entry.pid = state, reason, False, None

    return change


def _settle(outcome: Outcome, failure: str) -> Callable[[st.ServiceState], None]:
    def change(entry: st.ServiceState) -> None:
        entry.pid = outcome.pid
        if outcome.ready:
            entry.state, entry.ready, entry.reason = st.READY, True, None
            entry.ready_ms, entry.ready_at = outcome.ready_ms, time.time()
            entry.failures = 0  # started on request (up, start): a fresh restart budget
        else:
            entry.state, entry.ready, entry.reason = failure, False, outcome.reason

    return change
