"""`restart` and `reload` on a running stack: held services roll, one worker at a time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

from ollamamax_stack.errors import OllamamaxError, UsageError
from ollamamax_stack.handoff.slots import parse_program, parse_worker, worker_count
from ollamamax_stack.registry.graph import start_layers
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise import daemon, holder
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import Event, Status
from ollamamax_stack.supervise.orchestrator import Orchestrator, service_state
from ollamamax_stack.supervise.outcome import Outcome
from ollamamax_stack.supervise.rpc import Supervisor
from ollamamax_stack.supervise.workers import active, held

DEFAULT_DRAIN = 10.0


class PortMove(OllamamaxError):
    """`reload` would move a port of the running stack, and --force was not given (exit 1)."""


@dataclass
class ReloadPlan:
    """What `reload` found changed, by service."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)  # service -> "13100 -> 13105"


def _owner(program: str) -> str:
    slot = parse_program(program)
    return slot.service if slot is not None else program


def drain_timeout(registry: Registry, service: Service) -> float:
    """How long an old process of the service may drain (its OLLAMAMAX_DRAIN_TIMEOUT)."""
    raw = service.env.get("OLLAMAMAX_DRAIN_TIMEOUT")
    try:
        return float(raw) if raw else DEFAULT_DRAIN
    except ValueError:
        return DEFAULT_DRAIN


def _ready(outcome: Outcome) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.pid = outcome.pid
        entry.ready_ms, entry.ready_at = outcome.ready_ms, time.time()
        return entry.move(Status.READY, action="rolled", detail=f"after {outcome.ready_ms} ms")

    return change


async def roll(orchestrator: Orchestrator, service: Service,
               worker_ids: list[int] | None = None) -> Outcome:
    """Graceful restart of a held service (or some workers); workers that are down just start."""
    registry = orchestrator.registry
    running = sorted(active(service, await orchestrator.client.all_info()))
    rolling = [w for w in (running if worker_ids is None else worker_ids) if w in running]
    outcome = Outcome(True, ready_ms=0)
    if rolling:
        outcome = await orchestrator.workers.roll(service, rolling,
                                                  drain_timeout(registry, service))
    if outcome.ready and len(running) < worker_count(service):
        outcome = await orchestrator.bring_up(service)
    if outcome.ready:
        orchestrator.note(service.name, _ready(outcome))
    return outcome


async def restart(orchestrator: Orchestrator, names: list[str]) -> dict[str, Outcome]:
    """Restart services (`gateway`) or single workers (`gateway:1`), in the order given."""
    registry = orchestrator.registry
    outcomes: dict[str, Outcome] = {}
    for name in names:
        service_name, worker = parse_worker(name)
        service = registry.service(service_name)
        if worker is not None and (not held(service) or worker >= worker_count(service)):
            raise UsageError(f"{name}: {service_name} has no worker {worker} "
                             f"(workers: {worker_count(service) if held(service) else 1})")
        if held(service):
            outcomes[name] = await roll(orchestrator, service,
                                        None if worker is None else [worker])
        else:
            await orchestrator.stop([service_name])
            started = await orchestrator.start([service_name], keep_going=True)
            outcomes[name] = started[service_name]
    return outcomes


def plan(registry: Registry, state: st.State, changed_programs: list[str],
         added_programs: list[str], removed_programs: list[str]) -> ReloadPlan:
    """Which services changed, from supervisord's view of the config and the recorded ports."""
    found = ReloadPlan()
    owner = _owner
    managed = {s.name for s in registry.managed}
    for name in dict.fromkeys(owner(p) for p in changed_programs):
        if name in managed:
            found.changed.append(name)
    for name in dict.fromkeys(owner(p) for p in added_programs):
        if name in managed and name not in found.changed:
            (found.added if name not in state.services else found.changed).append(name)
    for name in dict.fromkeys(owner(p) for p in removed_programs):
        if name not in managed:
            found.removed.append(name)
        elif name not in found.changed:
            found.changed.append(name)  # fewer workers
    for name, entry in state.services.items():
        service = registry.services.get(name)
        if service is None or entry.external or not service.in_profile(registry.profile):
            continue
        if entry.ports != service.port_map and entry.state != Status.STOPPED:
            before = ", ".join(str(p) for p in entry.ports.values())
            after = ", ".join(str(p) for p in service.port_map.values())
            found.moved[name] = f"{before} -> {after}"
    return found


async def reload(registry: Registry, orchestrator: Orchestrator, *, force: bool) -> ReloadPlan:
    """Apply the registry as it is now: roll what changed; move ports only when forced."""
    paths = orchestrator.paths
    state = st.load(paths)
    emit = orchestrator.emit
    client = orchestrator.client
    preview = plan(registry, state, [], [], [])
    if preview.moved and not force:
        name, move = next(iter(preview.moved.items()))
        raise PortMove(f"reload would move port {move} of the running {name}; clients of the "
                       "old port would be refused. Run `ollamamax reload --force` to do it")
    daemon.write_config(registry)
    added, changed, removed = await client.reload()
    found = plan(registry, state, changed, added, removed)
    found.moved = preview.moved
    # New programs first (a held service's new workers, new services), then the holder binds
    # what the registry holds now: new and moved ports.
    for program in added:
        await client.add_group(program)
    if holder.needed(registry):
        sync_client = Supervisor(paths.socket)
        await asyncio.to_thread(holder.wait_ready, registry, sync_client)
        problems = await asyncio.to_thread(holder.sync, registry)
        if problems:
            raise OllamamaxError(f"reload: {problems[0]}")
    with st.locked(paths) as current:
        for name in [*found.changed, *found.added]:
            entry = service_state(registry, registry.services[name])
            previous = current.services.get(name)
            if previous is not None:  # the new definition, where the service is in its life
                entry = replace(entry, state=previous.state, pid=previous.pid,
                                restarts=previous.restarts, ready_ms=previous.ready_ms)
            current.services[name] = entry
    for name in found.removed:
        emit(name, "removed from the registry: stopping")
        old_programs = [p for p in removed if _owner(p) == name]
        for program in old_programs:
            await client.stop(program)
        for program in old_programs:
            await orchestrator.workers.wait_stopped(program, DEFAULT_DRAIN)
            await client.remove_group(program)
        with st.locked(paths) as current:
            current.services.pop(name, None)
    layers = start_layers({n: [d for d in registry.services[n].depends_on if d in found.changed]
                           for n in found.changed})
    for name in [n for layer in layers for n in layer]:
        service = registry.services[name]
        said = "definition changed: " + (f"rolling {worker_count(service)} worker(s)"
                                         if held(service) else "restarting")
        orchestrator.ctx.publish(Event(service=name, action="reload", to="restarting",
                                       reason=said))
        if held(service):
            for program in [p for p in removed if _owner(p) == name]:
                await client.stop(program)  # workers beyond the new count drain and go
                await orchestrator.workers.wait_stopped(program, drain_timeout(registry,
                                                                               service))
                await client.remove_group(program)
            outcome = await roll(orchestrator, service)
        else:
            await orchestrator.stop([name])
            await daemon.update_async(client)
            outcome = (await orchestrator.start([name], keep_going=True))[name]
        if not outcome.ready:
            raise OllamamaxError(f"reload: {name} {outcome.reason}")
        emit(name, "ready")
    if found.added:
        outcomes = await orchestrator.start(found.added, keep_going=True)
        failed = [n for n in found.added if not outcomes[n].ready]
        if failed:
            raise OllamamaxError(f"reload: {failed[0]} {outcomes[failed[0]].reason}")
    if holder.needed(registry):
        # moved ports: the old one closes once its last process is gone
        await asyncio.to_thread(holder.sync, registry)
    return found
