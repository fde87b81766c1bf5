"""The watcher: restarts crashed services with backoff and runs liveness probes while up.

`up` starts one watcher per run directory, detached beside supervisord (pid file
`watcher.pid`), so crashes are handled after `up -d` has returned and while a
foreground `up` only prints logs. `down` stops it first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.loader import load_registry
from ollamamax_stack.registry.model import Registry, RestartPolicy, Service
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.orchestrator import Orchestrator, pid_alive
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.probes import check_for
from ollamamax_stack.supervise.rpc import Supervisor, SupervisorError

RECONCILE_PERIOD = 1.0
EXTERNAL_PERIOD = 5.0
UNREACHABLE_LIMIT = 5  # RPC failures in a row after which supervisord is taken for gone


def log(message: str) -> None:
    """One line to the watcher's log (its stdout), which a foreground `up` also shows."""
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def backoff_delay(policy: RestartPolicy, failures: int) -> float:
    """The wait before the n-th restart in a row: doubling from `backoff`, capped."""
    return float(min(policy.backoff * 2 ** max(failures - 1, 0), policy.max_backoff))


class Watcher:
    """Watches one stack's services until supervisord goes away or the stack is brought down."""

    def __init__(self, registry: Registry, client: Supervisor) -> None:
        self.registry = registry
        self.paths = RunPaths(registry.run_dir)
        self.client = client
        self.orchestrator = Orchestrator(registry, client, emit=lambda n, m: log(f"{n}: {m}"))
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.pidfds: dict[str, tuple[int, int]] = {}  # service -> (pid, pidfd)
        self.busy: dict[str, asyncio.Task[None]] = {}  # services being restarted by us
        self.liveness: dict[str, asyncio.Task[None]] = {}
        self.last_external = 0.0

    async def run(self) -> None:
        """Reconcile on every process exit (pidfd) and at least once a second."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, self.stopping.set)
        failures = 0
        while not self.stopping.is_set():
            try:
                if not await self.reconcile():
                    break
                failures = 0
            except SupervisorError as exc:
                failures += 1
                if failures >= UNREACHABLE_LIMIT:
                    log(f"supervisord is gone ({exc}); the watcher ends")
                    break
            self.wake.clear()
            waits = [asyncio.ensure_future(self.wake.wait()),
                     asyncio.ensure_future(self.stopping.wait())]
            await asyncio.wait(waits, timeout=RECONCILE_PERIOD,
                               return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        for task in [*self.busy.values(), *self.liveness.values()]:
            task.cancel()
        for _, fd in self.pidfds.values():
            loop.remove_reader(fd)
            os.close(fd)

    def _track(self, name: str, pid: int | None) -> None:
        """Keep a pidfd on the service's current process so its exit wakes us at once."""
        loop = asyncio.get_running_loop()
        held = self.pidfds.get(name)
        if held and held[0] == pid:
            return
        if held:
            loop.remove_reader(held[1])
            os.close(held[1])
            del self.pidfds[name]
        if pid:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                return
            loop.add_reader(fd, self.wake.set)
            self.pidfds[name] = (pid, fd)

    async def reconcile(self) -> bool:
        """Act on what changed; False once the stack is being brought down."""
        state = st.load(self.paths)
        if state.phase in ("stopping", "down"):
            return False
        infos = self.client.all_info()
        for name, entry in state.services.items():
            service = self.registry.services.get(name)
            if service is None or service.external or name in self.busy:
                continue
            info = infos.get(name)
            if entry.state == st.READY:
                alive = info is not None and info.running and info.pid is not None and (
                    pid_alive(info.pid))
                if not alive:
                    self._recover(service, None)
                    continue
                self._track(name, info.pid if info else None)
                if service.liveness and name not in self.liveness:
                    self.liveness[name] = asyncio.create_task(self._live(service))
            else:
                self._track(name, None)
        if time.monotonic() - self.last_external > EXTERNAL_PERIOD:
            self.last_external = time.monotonic()
            await self._look_at_externals(state)
        return True

    async def _look_at_externals(self, state: st.State) -> None:
        for name, entry in state.services.items():
            service = self.registry.services.get(name)
            if service is None or not service.external:
                continue
            outcome = await self.orchestrator.probe_external(service)
            if outcome.ready != entry.ready:
                log(f"{name}: {'reachable again' if outcome.ready else outcome.reason}")

                def change(e: st.ServiceState, ready: bool = outcome.ready,
                           reason: str | None = outcome.reason) -> None:
                    e.ready, e.state = ready, st.READY if ready else st.UNREACHABLE
                    e.reason = None if ready else reason

                st.update_service(self.paths, name, change)

    def _recover(self, service: Service, why: str | None) -> None:
        task = asyncio.create_task(self._restart(service, why))
        self.busy[service.name] = task
        task.add_done_callback(lambda _: self.busy.pop(service.name, None))

    async def _restart(self, service: Service, why: str | None) -> None:
        """Restart with exponential backoff until ready again, or give up at the limit."""
        policy = service.restart
        if why is None:
            why = await self.orchestrator.settled_exit(service.name)
        while True:
            entry = st.load(self.paths).services.get(service.name)
            if entry is None:
                return
            stable = entry.ready_at is not None and time.time() - entry.ready_at >= policy.stable
            failures = 1 if stable else entry.failures + 1
            if failures > policy.limit:
                reason = (f"{why}; gave up after {policy.limit} restarts "
                          f"(restart limit {policy.limit})")
                log(f"{service.name}: fatal: {reason}")
                self.orchestrator.stop([service.name], timeout=5.0)
                st.update_service(self.paths, service.name, _fatal(reason, failures))
                return
            delay = backoff_delay(policy, failures)
            log(f"{service.name}: {why}; restart {failures}/{policy.limit} in {delay:g}s")
            st.update_service(self.paths, service.name, _restarting(why, failures))
            await asyncio.sleep(delay)
            if st.load(self.paths).services.get(service.name, entry).state != st.RESTARTING:
                return  # stopped or restarted by hand meanwhile
            st.update_service(self.paths, service.name, _count_restart)
            outcome = await self.orchestrator.bring_up(service)
            if outcome.ready:
                log(f"{service.name}: ready again after {outcome.ready_ms} ms")
                st.update_service(self.paths, service.name, _recovered(outcome.pid,
                                                                      outcome.ready_ms))
                return
            why = outcome.reason or "not ready"
            self.orchestrator.stop([service.name], timeout=5.0)
            st.update_service(self.paths, service.name, _restarting(why, failures))

    async def _live(self, service: Service) -> None:
        """Probe liveness every period; `failures` misses in a row restart the service."""
        probe = service.liveness
        assert probe is not None
        check = check_for(self.registry, service, probe,
                          service_environment(self.registry, service),
                          self.paths.log(service.name), attempt_timeout=min(probe.period, 2.0))
        missed = 0
        try:
            while True:
                await asyncio.sleep(probe.period)
                entry = st.load(self.paths).services.get(service.name)
                if entry is None or entry.state != st.READY or service.name in self.busy:
                    missed = 0
                    continue
                missed = 0 if await check() else missed + 1
                if missed >= probe.failures:
                    missed = 0
                    why = f"liveness probe failed {probe.failures} times in a row"
                    log(f"{service.name}: {why}")
                    st.update_service(self.paths, service.name, _restarting(why, entry.failures))
                    self.orchestrator.stop([service.name], timeout=5.0)
                    self._recover(service, why)
        finally:
            self.liveness.pop(service.name, None)


def _restarting(why: str, failures: int) -> st.Change:
    def change(entry: st.ServiceState) -> None:
        entry.state, entry.ready, entry.reason, entry.failures = st.RESTARTING, False, why, failures

    return change


def _recovered(pid: int | None, ready_ms: int | None) -> st.Change:
    def change(entry: st.ServiceState) -> None:
        entry.state, entry.ready, entry.reason, entry.pid = st.READY, True, None, pid
        entry.ready_ms, entry.ready_at = ready_ms, time.time()

    return change


def _count_restart(entry: st.ServiceState) -> None:
    entry.restarts += 1


def _fatal(reason: str, failures: int) -> st.Change:
    def change(entry: st.ServiceState) -> None:
        entry.state, entry.ready, entry.reason, entry.pid = st.FATAL, False, reason, None
        entry.failures = failures

    return change


def main(argv: list[str] | None = None) -> int:
    """`python -m ollamamax_stack.supervise.watcher --config F --run-dir D [--offset N]`."""
    parser = argparse.ArgumentParser(prog="ollamamax-watcher")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    registry = load_registry(args.config, offset=args.offset, profile=args.profile,
                             run_dir=args.run_dir)
    paths = RunPaths(registry.run_dir)
    client = Supervisor(paths.socket)
    paths.watcher_pid.write_text(f"{os.getpid()}\n")
    log(f"watching {registry.run_dir} (pid {os.getpid()})")
    try:
        asyncio.run(Watcher(registry, client).run())
    finally:
        try:
            if paths.watcher_pid.read_text().strip() == str(os.getpid()):
                paths.watcher_pid.unlink()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
