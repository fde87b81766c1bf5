"""The workers of a held service: which slot each runs in, starting the missing ones, rolling them.

Every worker of a held service has two supervisord programs (slots) on the same held sockets.
Only one runs, except during a graceful restart: the idle slot starts, its own probe socket
says it is ready, and only then the old slot gets SIGTERM and drains.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time

from ollamamax_stack.errors import EXIT_UNAVAILABLE
from ollamamax_stack.handoff.slots import (
    Slot,
    parse_program,
    slots,
    worker_count,
)
from ollamamax_stack.registry.model import Service
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.context import Context
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.machine import Event, WorkerStatus
from ollamamax_stack.supervise.outcome import Outcome, ended
from ollamamax_stack.supervise.probes import Output, wait_until
from ollamamax_stack.supervise.rpc import ALREADY_STARTED, BAD_NAME, ProcessInfo, SupervisorFault

SERVING = {"STARTING", "RUNNING", "BACKOFF"}  # STOPPING is a draining old slot, not the worker
DRAIN_GRACE = 5.0  # beyond the service's drain timeout before a draining slot is killed


def held(service: Service) -> bool:
    """Whether the service runs as workers on held sockets."""
    return service.held


def programs_of(service: Service) -> list[str]:
    """The supervisord programs of a service: its slots, or its own name."""
    return [s.program for s in slots(service)] if held(service) else [service.name]


def active(service: Service, infos: dict[str, ProcessInfo]) -> dict[int, ProcessInfo]:
    """worker -> the slot serving it now (the newest when both run); workers down are absent."""
    found: dict[int, ProcessInfo] = {}
    for slot in slots(service):
        info = infos.get(slot.program)
        if info is None or info.state not in SERVING or info.pid is None:
            continue
        if slot.worker not in found or info.start > found[slot.worker].start:
            found[slot.worker] = info
    return found


def serving_pids(service: Service, infos: dict[str, ProcessInfo]) -> dict[str, int] | None:
    """program -> pid of every worker's serving slot; None when some worker is down."""
    running = active(service, infos)
    if len(running) < worker_count(service):
        return None
    return {info.name: info.pid for info in running.values() if info.pid is not None}


class Workers:
    """Starts, stops and rolls the slots of held services through one supervisord."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client

    async def _exited(self, service: Service, program: str, pid: int | None) -> str | None:
        if pid is not None and self.ctx.alive(pid):
            return None
        info = await self.client.info(program)
        if info.state in SERVING and info.pid is not None and info.pid != pid:
            return None
        if info.state in SERVING:
            return None  # supervisord has not reaped it yet: next time
        if info.exitstatus == EXIT_UNAVAILABLE:
            said = [line.strip() for line in tail(self.ctx.paths.log(service.name), 5)
                    if line.strip()]
            return f"is unavailable here: {said[-1] if said else 'a program it needs is missing'}"
        return f"{ended(info)} before it was ready"

    async def start_slot(self, service: Service, slot: Slot) -> Outcome:
        """Start one slot and wait until its own process is ready (or exits, or times out)."""
        probe = service.readiness
        timeout = self.ctx.timeout or probe.timeout
        check = self.ctx.checks(self.ctx.registry, service, probe, slot.program,
                                min(1.0, timeout))
        output = Output(self.ctx.paths.log(service.name))  # every slot writes there
        started = time.monotonic()
        try:
            await self.client.start(slot.program)
        except SupervisorFault as fault:
            if fault.code != ALREADY_STARTED:
                return Outcome(False, f"supervisord could not start {slot.program}: {fault}")
        pid = (await self.client.info(slot.program)).pid
        self._said(slot, "start", WorkerStatus.STARTING, pid=pid)
        why = await wait_until(check, timeout, probe.period,
                               functools.partial(self._exited, service, slot.program, pid),
                               output)
        if why is not None:
            info = await self.client.info(slot.program)
            unavailable = info.state not in SERVING and info.exitstatus == EXIT_UNAVAILABLE
            self._said(slot, "failed", WorkerStatus.DOWN, why, pid)
            return Outcome(False, why, pid=pid, unavailable=unavailable)
        ready_ms = round((time.monotonic() - started) * 1000)
        self._said(slot, "ready", WorkerStatus.SERVING, f"after {ready_ms} ms", pid)
        return Outcome(True, ready_ms=ready_ms, pid=pid)

    def _said(self, slot: Slot, action: str, to: WorkerStatus, reason: str | None = None,
              pid: int | None = None) -> None:
        entry = st.peek(self.ctx.paths).services.get(slot.service)  # its restart count
        self.ctx.publish(Event(service=slot.service, action=action, to=to.value, reason=reason,
                               pid=pid, restarts=entry.restarts if entry else 0,
                               worker=slot.worker_name, slot=slot.program))

    async def bring_up(self, service: Service) -> Outcome:
        """Start every worker that has no serving slot, in parallel; ready when all are."""
        infos = await self.client.all_info()
        running = active(service, infos)
        starting = []
        for worker in range(worker_count(service)):
            if worker in running:
                continue
            side_a = Slot(service.name, worker, "a")
            # A slot still draining from before is left alone: start the other one.
            busy = infos.get(side_a.program)
            starting.append(side_a.other if busy is not None and busy.state == "STOPPING"
                            else side_a)
        outcomes = await asyncio.gather(*(self.start_slot(service, s) for s in starting))
        for slot, outcome in zip(starting, outcomes, strict=True):
            if not outcome.ready:
                reason = outcome.reason if worker_count(service) == 1 else (
                    f"worker {slot.worker_name}: {outcome.reason}")
                return Outcome(False, reason, pid=outcome.pid, unavailable=outcome.unavailable)
        first = active(service, await self.client.all_info()).get(0)
        ready_ms = max((o.ready_ms or 0 for o in outcomes), default=0)
        return Outcome(True, ready_ms=ready_ms, pid=first.pid if first else None)

    async def refresh(self, program: str) -> None:
        """Give a stopped slot the definition of the current config file (after `reload`)."""
        _, changed, removed = await self.client.reload()
        info = (await self.client.all_info()).get(program)
        if info is not None and info.state in SERVING | {"STOPPING"}:
            return
        if program in changed or program in removed:
            await self.client.remove_group(program)
        if program in changed:
            await self.client.add_group(program)

    async def wait_stopped(self, program: str, timeout: float) -> None:
        """Wait until a stopping slot has ended; SIGKILL its group after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = await self.client.info(program)
            except SupervisorFault as fault:
                if fault.code == BAD_NAME:
                    return
                raise
            if info.state not in SERVING | {"STOPPING"}:
                return
            if time.monotonic() > deadline and info.pid:
                try:
                    os.killpg(info.pid, signal.SIGKILL)
                except OSError:
                    pass
                deadline = time.monotonic() + timeout
            await asyncio.sleep(0.02)

    async def roll(self, service: Service, workers: list[int] | None = None,
                   drain: float = 10.0) -> Outcome:
        """Restart workers one at a time: the idle slot ready first, then the old one drains."""
        draining: list[str] = []
        last: Outcome = Outcome(True, ready_ms=0)
        for worker in workers if workers is not None else range(worker_count(service)):
            current = active(service, await self.client.all_info()).get(worker)
            slot = parse_program(current.name) if current else None
            spare = slot.other if slot else Slot(service.name, worker, "a")
            await self.wait_stopped(spare.program, drain + DRAIN_GRACE)
            await self.refresh(spare.program)
            last = await self.start_slot(service, spare)
            if not last.ready:
                await self.client.stop(spare.program)
                await self.wait_stopped(spare.program, DRAIN_GRACE)
                where = f"worker {spare.worker_name} ({spare.program})"
                return Outcome(False, f"{where} {last.reason}; the old process still serves",
                               pid=current.pid if current else None)
            if current is not None:
                await self.client.stop(current.name)
                draining.append(current.name)
                if (old := parse_program(current.name)) is not None:
                    self._said(old, "drain", WorkerStatus.DRAINING, pid=current.pid)
        for program in draining:
            await self.wait_stopped(program, drain + DRAIN_GRACE)
            await self.refresh(program)
        first = active(service, await self.client.all_info()).get(0)
        return Outcome(True, ready_ms=last.ready_ms, pid=first.pid if first else None)
