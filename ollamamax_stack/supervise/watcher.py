"""The watcher: restarts crashed services with backoff and runs liveness probes while up.

It is supervisord's event listener (`[eventlistener:ollamamax-watcher]`, as superlance's
httpok is), so supervisord starts it with the stack and restarts it when it dies. It wakes on
every PROCESS_STATE event and at least once a second, logs to stderr (watcher.log; stdout is
the listener protocol), and keeps its progress in state.json, so a restarted watcher resumes.
When its stdin closes, supervisord is gone: it ends what is left of the stack, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from ollamamax_stack.handoff.slots import HOLDER_PROGRAM
from ollamamax_stack.hostports import who
from ollamamax_stack.registry.loader import load_registry
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise import groups, listener, rolling, sweep
from ollamamax_stack.supervise import holder as socket_holder
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.context import Context, publisher, recorder
from ollamamax_stack.supervise.filewatch import WatchRules, changes
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.machine import UNSERVED, UP, Event, Status
from ollamamax_stack.supervise.orchestrator import Orchestrator
from ollamamax_stack.supervise.outcome import pid_alive
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.policy import backoff_delay, crash_count, exhausted
from ollamamax_stack.supervise.probes import CheckMaker, make_check
from ollamamax_stack.supervise.rpc import (
    AsyncSupervisor,
    ProcessInfo,
    SupervisorClient,
    SupervisorError,
)
from ollamamax_stack.supervise.supervisord import MODULE as SUPERVISORD_MODULE
from ollamamax_stack.supervise.workers import held, serving_pids

RECONCILE_PERIOD = 1.0
EXTERNAL_PERIOD = 5.0
STOP_TIMEOUT = 5.0  # the watcher's stops: SIGKILL to the group after this
UNREACHABLE_LIMIT = 5  # RPC failures in a row after which supervisord is taken for gone
WATCHING = ("starting", "running")  # phases in which crashes are the watcher's to handle


def log(message: str) -> None:
    """One line to the watcher's log (its stderr), which a foreground `up` also shows."""
    try:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)
    except OSError:
        pass  # supervisord reads the pipe; if even that fails there is nobody left to tell


def printable(text: str) -> str:
    """A service's own words made safe for one log or status line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class Watcher:
    """Watches one stack's services for as long as its supervisord lives."""

    def __init__(self, registry: Registry, client: SupervisorClient, *,
                 checks: CheckMaker = make_check,
                 alive: Callable[[int], bool] = pid_alive) -> None:
        self.registry = registry
        self.paths = RunPaths(registry.run_dir)
        self.client = client
        # The state and the events are best effort: a full disk is said once, never fatal.
        self.publish = publisher(self.paths, best_effort=True, on_error=self.note_disk)
        self.note = recorder(self.paths, self.publish, best_effort=True,
                             on_error=self.note_disk)
        self.alive = alive
        self.orchestrator = Orchestrator(Context(registry, client, self.note, self.publish,
                                                 emit=lambda n, m: log(f"{n}: {m}"),
                                                 checks=checks, alive=alive))
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.orphaned = False  # supervisord died under us
        self.busy: dict[str, asyncio.Task[None]] = {}  # services being restarted by us
        self.liveness: dict[str, asyncio.Task[None]] = {}
        self.last_external = 0.0
        self.disk_error: str | None = None
        self.rules = WatchRules.of(registry)  # what `up --watch` rolls on a saved change
        self.files: asyncio.Task[None] | None = None  # that watch, while it is on
        self.pending: dict[str, list[Path]] = {}  # saved while busy: rolled once it is done

    async def run(self) -> None:
        """Reconcile on every event and at least once a second, until told to stop."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, self.stopping.set)
        events = asyncio.create_task(listener.listen(lambda event: self.wake.set()))
        events.add_done_callback(self._supervisord_gone)
        failures = 0
        while not self.stopping.is_set():
            try:
                await self.reconcile()
                failures = 0
            except SupervisorError as exc:
                failures += 1
                if failures >= UNREACHABLE_LIMIT:
                    log(f"supervisord does not answer ({exc}); the watcher ends")
                    break
            except OSError as exc:
                self.note_disk(exc)
            self.wake.clear()
            waits = [asyncio.ensure_future(self.wake.wait()),
                     asyncio.ensure_future(self.stopping.wait())]
            await asyncio.wait(waits, timeout=RECONCILE_PERIOD,
                               return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        events.cancel()
        for task in [*self.busy.values(), *self.liveness.values(), *filter(None, [self.files])]:
            task.cancel()
        if self.orphaned:
            await asyncio.to_thread(end_orphans, self.paths.run_dir)

    def _supervisord_gone(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        log("supervisord is gone (its pipe closed): ending what is left of the stack"
            + (f" ({error})" if error else ""))
        self.orphaned = True
        self.stopping.set()

    def note_disk(self, exc: OSError) -> None:
        """Say once per distinct error that the state could not be written, and go on."""
        message = f"cannot write {exc.filename or self.paths.state}: {exc.strerror or exc}"
        if message != self.disk_error:
            log(f"{message}; going on without recording")
        self.disk_error = message

    async def reconcile(self) -> None:
        """Restart what crashed, resume restarts a previous watcher left, start liveness probes."""
        state = st.load(self.paths)
        self._watch_files(state)
        if state.phase not in WATCHING:
            return
        infos = await self.client.all_info()
        for name, entry in state.services.items():
            service = self.registry.services.get(name)
            if service is None or service.external or name in self.busy:
                continue
            alive = _serving(service, infos, self.alive) is not None
            if entry.state in UP and not alive:
                # A held service's workers each have their own group: never end a live one's.
                self._recover(service, None, None if held(service) else entry.pid, count=True)
            elif entry.state == Status.RESTARTING:
                log(f"{name}: resuming its restart ({entry.reason or 'crashed'})")
                self._recover(service, entry.reason, entry.pid, count=False)
            elif entry.state in UP and service.liveness and name not in self.liveness:
                task = asyncio.create_task(self._live(service))
                task.add_done_callback(functools.partial(_said, name))
                self.liveness[name] = task
            elif entry.state in UNSERVED and held(service):
                # Again each round: a restarted holder binds every port anew.
                await self._park(service, wait=False)
        if time.monotonic() - self.last_external > EXTERNAL_PERIOD:
            self.last_external = time.monotonic()
            await self._look_at_externals(state)

    async def _look_at_externals(self, state: st.State) -> None:
        for name, entry in state.services.items():
            service = self.registry.services.get(name)
            if service is None or not service.external:
                continue
            outcome = await self.orchestrator.probe_external(service)
            if outcome.ready != entry.ready:
                log(f"{name}: {'reachable again' if outcome.ready else outcome.reason}")

                self.note(name, _reachable(outcome.ready, outcome.reason))

    def _recover(self, service: Service, why: str | None, pid: int | None, count: bool,
                 stop: bool = False) -> None:
        task = asyncio.create_task(self._restart(service, why, pid, count, stop))
        self._occupy(service, task)

    def _occupy(self, service: Service, task: asyncio.Task[None]) -> None:
        """`task` restarts or rolls the service: nothing else does until it is done."""
        self.busy[service.name] = task
        task.add_done_callback(functools.partial(_said, service.name))
        task.add_done_callback(lambda _: self._free(service))

    def _free(self, service: Service) -> None:
        self.busy.pop(service.name, None)
        saved = self.pending.pop(service.name, None)
        if saved and not self.stopping.is_set():
            self._roll_changed(service, saved)

    def _abandoned(self, name: str) -> bool:
        """Whether a restart in progress is no longer wanted (stopped by hand, or `down`)."""
        state = st.load(self.paths)
        entry = state.services.get(name)
        return (self.stopping.is_set() or state.phase not in WATCHING or entry is None
                or entry.state in (Status.STOPPED, Status.FATAL))

    async def _restart(self, service: Service, why: str | None, pid: int | None,
                       count: bool, stop: bool = False) -> None:
        """Restart with doubling backoff until ready again, or give up at the limit."""
        name, policy = service.name, service.restart
        entry = st.load(self.paths).services.get(name)
        if entry is None:
            return
        failures = crash_count(entry, policy, time.time()) if count else max(entry.failures, 1)
        if stop:  # it still runs (unresponsive): as long as it takes, while others are watched
            self.note(name, _crashed(why or "unresponsive", failures))
            await self.orchestrator.stop([name], timeout=STOP_TIMEOUT, requested=False)
        if why is None:
            why = await self.orchestrator.settled_exit(name)
        if not stop:
            self.note(name, _crashed(why, failures))
        while True:
            # Like systemd's KillMode=control-group: nothing of the old process may keep its port.
            ended = await asyncio.to_thread(groups.end, pid, self.paths.run_dir, name)
            if ended:
                log(f"{name}: ended {ended} leftover process(es) of its group")
            if exhausted(policy, failures):
                cause = await asyncio.to_thread(self.cause, service)
                reason = (f"{why}; gave up after {policy.limit} restarts "
                          f"(restart limit {policy.limit}); {cause}")
                log(f"{name}: fatal: {reason}")
                await self.orchestrator.stop([name], timeout=STOP_TIMEOUT, requested=False)
                if held(service):
                    await self._park(service, wait=True)  # before `status` says fatal
                self.note(name, _fatal(reason, failures))
                return
            delay = backoff_delay(policy, failures)
            log(f"{name}: {why}; restart {failures}/{policy.limit} in {delay:g}s")
            self.note(name, _backoff(why, failures, f"restart {failures}/{policy.limit} in "
                                                    f"{delay:g}s"))
            await asyncio.sleep(delay)
            if self._abandoned(name):
                return
            self.note(name, _starting_again)
            outcome = await self.orchestrator.bring_up(service)
            if outcome.ready:
                log(f"{name}: ready again after {outcome.ready_ms} ms")
                self.note(name, _recovered(outcome.pid, outcome.ready_ms))
                return
            why, pid = outcome.reason or "not ready", outcome.pid
            await self.orchestrator.stop([name], timeout=STOP_TIMEOUT, requested=False)
            failures += 1

    # -- watch and roll (`up --watch`) ------------------------------------------------------

    def _watch_files(self, state: st.State) -> None:
        """Watch the services' files once the stack runs with `watch` on; stop when it is off.

        Here, not in the foreground `up`: `up -d --watch` works too, and a saved change and a
        crash restart of the same service never run at once (both go through `busy`)."""
        wanted = state.watch and state.phase == "running" and bool(self.rules.globs)
        if wanted and self.files is None:
            for name in self.rules.globs:
                entry = state.services.get(name)
                globs = ", ".join(self.registry.services[name].watch)
                log(f"{name}: watching {globs}")
                self.publish(Event(service=name, action="watch", reason=f"watching {globs}",
                                   to=entry.state.value if entry else "stopped").stamped())
            self.files = asyncio.create_task(self._follow_files())
            self.files.add_done_callback(functools.partial(_said, "watch"))
        elif not wanted and self.files is not None:
            self.files.cancel()
            self.files = None

    async def _follow_files(self) -> None:
        async for found in changes(self.rules, self.stopping):
            for name, paths in found.items():
                self._roll_changed(self.registry.services[name], paths)

    def _roll_changed(self, service: Service, paths: list[Path]) -> None:
        name, paths = service.name, list(dict.fromkeys(paths))
        shown = ", ".join(_shown(p, self.registry.root) for p in paths[:3]) + (
            f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        entry = st.load(self.paths).services.get(name)
        if entry is None or entry.state not in UP:
            log(f"{name}: {shown} changed; not rolled: it is {entry.state if entry else 'gone'}")
            return
        if name in self.busy:  # its new process may have read the files before this save
            log(f"{name}: {shown} changed during its restart or roll: rolled again after it")
            self.pending.setdefault(name, []).extend(paths)
            return
        self._occupy(service, asyncio.create_task(self._roll(service, shown, entry.state)))

    async def _roll(self, service: Service, shown: str, now: Status) -> None:
        """Roll a held service gracefully (restart another) for a saved change; on a new
        process that never gets ready, the old one keeps serving and the event says why."""
        name = service.name
        why = f"{shown} changed: " + ("rolling" if held(service) else "restarting")
        log(f"{name}: {why}")
        self.publish(Event(service=name, action="watch", to=now.value, reason=why).stamped())
        if held(service):
            outcome = await rolling.roll(self.orchestrator, service)
        else:
            outcome = (await rolling.restart(self.orchestrator, [name]))[name]
        if outcome.ready:
            log(f"{name}: rolled for {shown}: pid {outcome.pid} serves")
            return
        reason = f"not rolled: {outcome.reason}"
        log(f"{name}: {reason}")
        entry = st.load(self.paths).services.get(name)
        self.publish(Event(service=name, action="watch", reason=reason, pid=outcome.pid,
                           to=entry.state.value if entry else now.value).stamped())

    async def _park(self, service: Service, wait: bool) -> None:
        """Close a held service's ports while nobody serves it: clients are refused at once."""
        problem = await asyncio.to_thread(socket_holder.park, self.registry, service.name, wait)
        if problem is not None and wait:
            log(f"{service.name}: its ports stay open: {problem}")

    def cause(self, service: Service) -> str:
        """Why a service keeps failing: a stranger on its port, or the last line it logged."""
        for port in service.port_map.values():
            for holder in who(port):
                if holder.pid and not (holder.owned_by(self.paths.run_dir)
                                       and holder.service in (service.name, HOLDER_PROGRAM)):
                    return f"port {port} is held by {printable(holder.describe())}"
        lines = [line.strip() for line in tail(self.paths.log(service.name), 20) if line.strip()]
        return f"its last log line: {printable(lines[-1])}" if lines else "it logged nothing"

    async def _live(self, service: Service) -> None:
        """Probe liveness every period: one miss is `unresponsive`, `failures` in a row restart."""
        probe = service.liveness
        assert probe is not None
        name = service.name
        check = self.orchestrator.ctx.checks(self.registry, service, probe, None,
                                             min(probe.period, 2.0))
        missed = 0
        try:
            while not self.stopping.is_set():
                await asyncio.sleep(probe.period)
                entry = st.load(self.paths).services.get(name)
                if entry is None or entry.state not in UP or name in self.busy:
                    return
                if await check():
                    if entry.state == Status.UNRESPONSIVE:
                        log(f"{name}: liveness probe passed again after {missed} miss(es)")
                        self.note(name, _responsive)
                    missed = 0
                    continue
                missed += 1
                if missed < probe.failures:
                    self.note(name, _unresponsive(
                        f"liveness probe failed ({missed} of {probe.failures} in a row)"))
                    continue
                why = f"liveness probe failed {probe.failures} times in a row"
                log(f"{name}: {why}")
                self._recover(service, why, entry.pid, count=True, stop=True)
                return
        finally:
            self.liveness.pop(name, None)


def _serving(service: Service, infos: dict[str, ProcessInfo],
             alive: Callable[[int], bool]) -> dict[str, int] | None:
    """program -> pid of each live process serving the service; None when one is down."""
    if held(service):
        pids = serving_pids(service, infos)
    else:
        info = infos.get(service.name)
        pids = {service.name: info.pid} if info is not None and info.running and (
            info.pid is not None) else None
    if pids is None or not all(alive(pid) for pid in pids.values()):
        return None
    return pids


def _shown(path: Path, root: Path) -> str:
    """A changed path as the user wrote its glob: relative to the root when under it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _said(name: str, task: asyncio.Task[None]) -> None:
    """Log why a restart or probe task ended early; the next reconcile takes the service up."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log(f"{name}: the watcher's task {task.get_name()} stopped: {error!r}")


def end_orphans(run_dir: Path) -> None:
    """End every process of the stack left after supervisord died, but not a new supervisord's."""
    found = sweep.stack_processes(run_dir)
    spare: set[int] = set()
    for proc in found:
        try:
            if SUPERVISORD_MODULE in " ".join(proc.cmdline()):
                spare.add(proc.pid)  # a new `up` already runs: its processes are not orphans
                spare.update(child.pid for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    orphans = [p for p in found if p.pid not in spare]
    if orphans:
        log(f"ending {len(orphans)} process(es) left without supervisord")
    sweep.end(orphans, timeout=2.0)


def _crashed(why: str, failures: int) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.failures = failures
        return entry.move(Status.RESTARTING, why, action="crash")

    return change


def _backoff(why: str, failures: int, wait: str) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.failures = failures
        return entry.move(Status.RESTARTING, why, action="backoff", detail=f"{why}; {wait}")

    return change


def _unresponsive(why: str) -> st.Change:
    def change(entry: st.ServiceState) -> Event | None:
        if entry.state not in UP:
            return None
        return entry.move(Status.UNRESPONSIVE, why, action="liveness")

    return change


def _responsive(entry: st.ServiceState) -> Event | None:
    if entry.state != Status.UNRESPONSIVE:
        return None
    return entry.move(Status.READY, action="responsive", detail="liveness probe passed again")


def _recovered(pid: int | None, ready_ms: int | None) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.pid, entry.ready_ms, entry.ready_at = pid, ready_ms, time.time()
        return entry.move(Status.READY, detail=f"again after {ready_ms} ms")

    return change


def _starting_again(entry: st.ServiceState) -> Event:
    entry.restarts += 1
    entry.started_at = time.time()
    return entry.move(Status.RESTARTING, entry.reason, action="restart")


def _fatal(reason: str, failures: int) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        entry.pid, entry.failures = None, failures
        return entry.move(Status.FATAL, reason, action="fatal")

    return change


def _reachable(ready: bool, reason: str | None) -> st.Change:
    def change(entry: st.ServiceState) -> Event:
        if ready:
            return entry.move(Status.READY, action="reachable")
        return entry.move(Status.UNREACHABLE, reason)

    return change


def main(argv: list[str] | None = None) -> int:
    """`python -m ollamamax_stack.supervise.watcher --config F --run-dir D [--offset N]`."""
    parser = argparse.ArgumentParser(prog="ollamamax-watcher")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    if os.environ.get("SUPERVISOR_ENABLED") != "1":
        # Its stdin is supervisord's pipe: run by hand, a closed stdin would read as "supervisord
        # died" and end the stack.
        log("the watcher runs as supervisord's event listener only (`ollamamax up` starts it)")
        return 2
    registry = load_registry(args.config, offset=args.offset, profile=args.profile,
                             run_dir=args.run_dir)
    client = AsyncSupervisor(RunPaths(registry.run_dir).socket)
    log(f"watching {registry.run_dir} (pid {os.getpid()})")
    asyncio.run(Watcher(registry, client).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
