"""Start services in dependency order gated on readiness, and stop them in reverse order."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace

from ollamamax_stack.errors import EXIT_UNAVAILABLE, UsageError
from ollamamax_stack.handoff.slots import parse_program
from ollamamax_stack.registry.graph import stop_order, with_dependencies
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.config import missing_executable
from ollamamax_stack.supervise.context import Context, Emit
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.machine import Event, Status
from ollamamax_stack.supervise.outcome import Outcome, ended, pid_alive
from ollamamax_stack.supervise.probes import Output, describe, wait_until
from ollamamax_stack.supervise.rpc import ALREADY_STARTED, SPAWN_ERROR, SupervisorFault
from ollamamax_stack.supervise.workers import Workers, held, programs_of, serving_pids

__all__ = ["Emit", "Orchestrator", "Outcome", "pid_alive", "service_state"]

STOP_POLL = 0.02


def service_state(registry: Registry, service: Service) -> st.ServiceState:
    """A fresh persisted entry for a service."""
    return st.ServiceState(name=service.name, ports=service.port_map, url=registry.url(service),
                           external=service.external, optional=service.optional,
                           depends_on=list(service.depends_on))


def dependencies(registry: Registry) -> dict[str, list[str]]:
    """Each active service's dependencies among the active services."""
    active = {s.name for s in registry.active}
    return {s.name: [d for d in s.depends_on if d in active] for s in registry.active}


def targets(registry: Registry, names: list[str]) -> list[str]:
    """The named services and their dependencies (every active service when none is named)."""
    for name in names:
        service = registry.service(name)
        if not service.in_profile(registry.profile):
            raise UsageError(f"service {name!r} is not in profile {registry.profile!r} "
                             f"(its profiles: {', '.join(service.profiles)})")
    deps = dependencies(registry)
    return with_dependencies(deps, names or list(deps))


class Orchestrator:
    """Brings services of one registry up and down through one supervisord."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.registry = ctx.registry
        self.client = ctx.client
        self.paths = ctx.paths
        self.emit: Emit = ctx.emit
        self.timeout = ctx.timeout
        self.note = ctx.record
        self.deps = dependencies(self.registry)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.workers = Workers(ctx)

    def targets(self, names: list[str]) -> list[str]:
        """The named services and their dependencies (every active service when none is named)."""
        return targets(self.registry, names)

    async def settled_exit(self, name: str, timeout: float = 2.0) -> str:
        """Wait until supervisord has noticed a program's exit; how it ended, in words."""
        deadline = time.monotonic() + timeout
        service = self.registry.services.get(name)
        if service is not None and held(service):
            infos = await self.client.all_info()
            while serving_pids(service, infos) is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                infos = await self.client.all_info()
            down = [infos[p] for p in programs_of(service) if p in infos
                    and infos[p].state not in ("STARTING", "RUNNING", "BACKOFF", "STOPPING")]
            if not down:
                return "a worker ended"
            last = max(down, key=lambda i: i.stop)
            return f"worker {last.name} {ended(last)}"
        info = await self.client.info(name)
        while info.running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            info = await self.client.info(name)
        return ended(info)

    # -- bringing one service up ------------------------------------------------------------

    async def _exited(self, name: str, pid: int | None) -> str | None:
        if pid is not None and self.ctx.alive(pid):
            return None
        info = await self.client.info(name)
        if info.running:
            return None  # replaced meanwhile, or supervisord has not reaped it yet: next time
        if info.exitstatus == EXIT_UNAVAILABLE:
            said = [line.strip() for line in tail(self.paths.log(name), 5) if line.strip()]
            return f"is unavailable here: {said[-1] if said else 'a program it needs is missing'}"
        return f"{ended(info)} before it was ready"

    async def bring_up(self, service: Service) -> Outcome:
        """Start one managed service and wait for its readiness probe (or its exit, or timeout)."""
        started_at = time.time()
        outcome = await self._bring_up(service)
        return replace(outcome, started_at=started_at)

    async def _bring_up(self, service: Service) -> Outcome:
        missing = missing_executable(self.registry, service)
        if missing:
            return Outcome(False, f"its command {missing!r} is not installed (not found on PATH)",
                           unavailable=True)
        if held(service):
            self.note(service.name, _starting(None))
            return await self.workers.bring_up(service)
        probe = service.readiness
        timeout = self.timeout or probe.timeout
        check = self.ctx.checks(self.registry, service, probe, None, min(1.0, timeout))
        output = Output(self.paths.log(service.name))  # before it can write a line
        started = time.monotonic()
        try:
            await self.client.start(service.name)
        except SupervisorFault as fault:
            if fault.code != ALREADY_STARTED:
                return Outcome(False, self._spawn_failure(service, fault))
        pid = (await self.client.info(service.name)).pid
        self.note(service.name, _starting(pid))  # written only when the state moves
        why = await wait_until(check, timeout, probe.period,
                               lambda: self._exited(service.name, pid), output)
        if why is not None:
            info = await self.client.info(service.name)
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
        check = self.ctx.checks(self.registry, service, probe, None, min(1.0, probe.timeout))
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
                self.note(name, _mark(Status.SKIPPED, results[name].reason))
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
                self.note(name, _mark(Status.SKIPPED, outcome.reason))
                return
            outcome = await self._attempt(service)  # its events are the progress lines
            results[name] = outcome
            if outcome.ready:
                pass
            elif service.optional:
                self.emit(name, "optional: the stack runs degraded")
            elif not keep_going:
                self._abort(name)
        finally:
            done[name].set()

    async def _attempt(self, service: Service) -> Outcome:
        if service.external:
            outcome = await self.probe_external(service)
            failure = Status.UNREACHABLE
        else:
            current = st.peek(self.paths).services.get(service.name)
            was_ready, pid, ready_ms = ((current.state == Status.READY, current.pid,
                                         current.ready_ms) if current else (False, None, None))
            # Already up (an `up` of a running stack): only a ready record needs asking about.
            if was_ready and held(service):
                if serving_pids(service, await self.client.all_info()):
                    return Outcome(True, ready_ms=ready_ms, pid=pid)
            elif was_ready:
                info = await self.client.info(service.name)
                if info.running and info.pid == pid:
                    return Outcome(True, ready_ms=ready_ms, pid=info.pid)
            outcome = await self.bring_up(service)
            failure = Status.SKIPPED if outcome.unavailable else Status.FAILED
        self.note(service.name, _settle(outcome, failure))
        return outcome

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self, names: list[str], timeout: float = 10.0, *,
                   requested: bool = True) -> None:
        """Stop managed services in reverse dependency order; SIGKILL a group after `timeout`.
        `requested`: they become `stopped` (not when the watcher stops one to restart it)."""
        managed = [n for n in names if n in self.registry.services
                   and self.registry.services[n].managed]
        graph = {n: [d for d in self.deps.get(n, []) if d in managed] for n in managed}
        for layer in stop_order(graph):
            await self._stop_layer(layer, timeout, requested)

    async def _stop_layer(self, layer: list[str], timeout: float, requested: bool) -> None:
        # Marked stopped before the signal, so the watcher never takes the exit for a crash.
        for name in layer:
            if requested:
                self.note(name, _mark(Status.STOPPED, "stopped"))
        waiting: dict[str, int] = {}
        infos = await self.client.all_info()
        for name in layer:
            stopping = False
            for program in programs_of(self.registry.services[name]):
                info = infos.get(program)
                if info is not None and info.running and info.pid:
                    waiting[program] = info.pid
                    stopping = True
                    await self.client.stop(program)
                    try:  # as systemd does: a stopped (SIGSTOP) process must wake to see SIGTERM
                        os.killpg(info.pid, signal.SIGCONT)
                    except OSError:
                        pass
            if stopping:
                self.emit(name, "stopping")
        deadline = time.monotonic() + timeout
        killed = False
        while waiting:
            infos = await self.client.all_info()
            for program in list(waiting):
                if program not in infos or not infos[program].running:
                    del waiting[program]
            if not waiting or (killed and time.monotonic() > deadline):
                break
            if not killed and time.monotonic() > deadline:
                for program, pid in waiting.items():
                    slot = parse_program(program)
                    name = slot.service if slot and slot.service in self.registry.services else (
                        program)
                    why = f"did not stop within {timeout:g}s: SIGKILL to its group"
                    self.ctx.publish(Event(service=name, action="kill", to="stopping",
                                           reason=why, pid=pid, slot=slot.program if slot
                                           else None))
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                killed, deadline = True, time.monotonic() + 5.0
            await asyncio.sleep(STOP_POLL)


def _starting(pid: int | None) -> st.Change:
    """The start of an attempt: a move (and a write) only from a state other than starting;
    its pid and start time are recorded when it settles (a state.json write a service saved)."""
    def change(entry: st.ServiceState) -> Event | None:
        if entry.state == Status.RESTARTING:
            return None  # the watcher's restart: it said so
        event = entry.move(Status.STARTING, action="start")
        return replace(event, pid=pid) if pid is not None else event

    return change


def _mark(state: Status, reason: str | None) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.pid = None
        return entry.move(state, reason, action="stop" if state == Status.STOPPED else None)

    return change


def _settle(outcome: Outcome, failure: Status) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.pid = outcome.pid
        if outcome.started_at is not None:
            entry.started_at = outcome.started_at
        if outcome.ready:
            entry.ready_ms, entry.ready_at = outcome.ready_ms, time.time()
            entry.failures = 0  # started on request (up, start): a fresh restart budget
            return entry.move(Status.READY, detail=f"after {outcome.ready_ms} ms")
        return entry.move(failure, outcome.reason)

    return change
