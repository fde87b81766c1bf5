"""The restart policy as the watcher applies it, against an in-memory supervisord: the real
watcher, orchestrator and workers, no process, in milliseconds (tests/fakes/supervisord.py
says why the double is true). The policy's pure functions: test_supervise_policy.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import events, rolling
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.context import Context, publisher, recorder
from ollamamax_stack.supervise.machine import Event, Status
from ollamamax_stack.supervise.orchestrator import Orchestrator, service_state
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.watcher import Watcher
from ollamamax_stack.supervise.workers import programs_of
from tests.fakes.supervisord import FakeSupervisord

STACK = """
[stack]
name = "policy"
root = "."
run_dir = "run"

[services.crashy]
port = 30001
command = "true"
readiness = { http = "/ready", timeout = 0.3, period = 0.005 }
restart = { limit = 3, backoff = 0.01, max_backoff = 0.04, stable = 0.3 }

[services.live]
port = 30002
command = "true"
readiness = { http = "/ready", timeout = 0.3, period = 0.005 }
liveness = { http = "/health", period = 0.02, failures = 3 }
restart = { limit = 3, backoff = 0.01, max_backoff = 0.04, stable = 0.3 }
"""

HELD = """
[services.gateway]
port = 30003
command = "ollamamax serve gateway"
workers = 3
readiness = { http = "/health/ready", timeout = 0.3, period = 0.005 }
"""


class Rig:
    """One registry on the in-memory supervisord: brought up by the real orchestrator."""

    def __init__(self, tmp_path: Path, text: str) -> None:
        config = tmp_path / "ports.toml"
        config.write_text(text)
        self.registry: Registry = load_registry(config, run_dir=tmp_path / "run")
        self.paths = RunPaths(self.registry.run_dir)
        self.paths.prepare()
        self.fake = FakeSupervisord()
        for service in self.registry.managed:
            self.fake.add(*programs_of(service))
        publish = publisher(self.paths, best_effort=False)
        self.orchestrator = Orchestrator(Context(
            self.registry, self.fake, recorder(self.paths, publish, best_effort=False),
            publish, checks=self.fake.checks, alive=self.fake.alive))
        self.watcher = Watcher(self.registry, self.fake, checks=self.fake.checks,
                               alive=self.fake.alive)

    async def up(self) -> None:
        with st.locked(self.paths) as state:
            state.phase = "starting"
            state.services = {s.name: service_state(self.registry, s)
                              for s in self.registry.active}
        outcomes = await self.orchestrator.start([])
        assert all(o.ready for o in outcomes.values()), outcomes
        with st.locked(self.paths) as state:
            state.phase = "running"

    def entry(self, name: str) -> st.ServiceState:
        return st.load(self.paths).services[name]

    async def watch(self, until: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Run the watcher's rounds (as its event loop would) until `until()`."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.events()}"
            await self.watcher.reconcile()
            await asyncio.sleep(0.005)

    def stop_watching(self) -> None:
        for task in [*self.watcher.busy.values(), *self.watcher.liveness.values()]:
            task.cancel()

    def events(self, name: str | None = None) -> list[Event]:
        return [e for e in events.read(self.registry.run_dir)
                if name is None or (e.service == name and e.worker is None)]

    def actions(self, name: str, since: int = 0) -> list[str]:
        return [e.action for e in self.events(name)[since:]]


def _run(test: Callable[[], object]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


def _ready_again(rig: Rig, name: str, restarts: int) -> Callable[[], bool]:
    return lambda: rig.entry(name).ready and rig.entry(name).restarts == restarts


def test_backoff_doubles_and_the_count_resets_only_after_a_stable_run(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)

    async def test() -> None:
        await rig.up()
        before = len(rig.events("crashy"))
        for n in (1, 2):  # killed again at once: crashes in a row
            rig.fake.kill("crashy")
            await rig.watch(_ready_again(rig, "crashy", n), f"restart {n}")
        await asyncio.sleep(0.35)  # ready for longer than `stable`: the next one counts from 1
        rig.fake.kill("crashy")
        await rig.watch(_ready_again(rig, "crashy", 3), "restart 3")
        rig.stop_watching()
        seen = rig.events("crashy")[before:]
        assert [e.action for e in seen] == ["crash", "backoff", "restart", "ready"] * 3
        waits = [e.reason.rsplit("; ", 1)[1] for e in seen if e.action == "backoff"
                 and e.reason]
        assert waits == ["restart 1/3 in 0.01s", "restart 2/3 in 0.02s", "restart 1/3 in 0.01s"]
        crash = seen[0]
        assert (crash.before, crash.to, crash.reason) == ("ready", "restarting",
                                                         "was killed by a signal")

    _run(test)


def test_a_service_that_never_gets_ready_again_ends_fatal_at_the_limit(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)

    async def test() -> None:
        await rig.up()
        rig.fake.behaviour("crashy").never_ready = True
        rig.fake.kill("crashy")
        await rig.watch(lambda: rig.entry("crashy").state == Status.FATAL, "fatal")
        await asyncio.sleep(0.1)
        await rig.watcher.reconcile()  # fatal stays fatal: nothing restarts it
        rig.stop_watching()
        entry = rig.entry("crashy")
        assert entry.restarts == 3 and entry.pid is None and not entry.ready
        assert "gave up after 3 restarts" in (entry.reason or "")
        assert rig.fake.starts["crashy"] == 1 + 3
        actions = rig.actions("crashy")
        assert actions[-1] == "fatal" and actions.count("restart") == 3
        assert rig.fake.programs["crashy"].state == "STOPPED"  # its last try was stopped

    _run(test)


def test_liveness_misses_make_it_unresponsive_then_restarted(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)

    async def test() -> None:
        await rig.up()
        rig.fake.behaviour("live").healthy = False
        await rig.watch(lambda: rig.entry("live").state == Status.UNRESPONSIVE, "unresponsive")
        assert rig.entry("live").restarts == 0
        await rig.watch(lambda: ("stop", "live") in rig.fake.calls, "stopped")
        rig.fake.behaviour("live").healthy = True  # the new process is healthy
        await rig.watch(_ready_again(rig, "live", 1), "restarted")
        rig.stop_watching()
        seen = rig.events("live")
        misses = [e for e in seen if e.action == "liveness"]
        assert [e.reason for e in misses] == [f"liveness probe failed ({n} of 3 in a row)"
                                              for n in (1, 2)]
        crash = next(e for e in seen if e.action == "crash")
        assert crash.before == "unresponsive"
        assert crash.reason == "liveness probe failed 3 times in a row"
        assert ("stop", "live") in rig.fake.calls
        assert rig.fake.starts["live"] == 2

    _run(test)


def test_a_slow_stop_holds_up_no_other_service(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)

    async def test() -> None:
        await rig.up()
        rig.fake.behaviour("live").stop_takes = 1.0  # ignores SIGTERM for a second
        rig.fake.behaviour("live").healthy = False
        await rig.watch(lambda: rig.fake.programs["live"].state == "STOPPING", "live stopping")
        rig.fake.kill("crashy")
        await rig.watch(_ready_again(rig, "crashy", 1), "crashy back")
        assert rig.fake.programs["live"].state == "STOPPING"  # crashy did not wait for it
        rig.stop_watching()

    _run(test)


def test_a_rolling_restart_brings_each_worker_up_on_its_other_slot_first(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK + HELD)

    async def test() -> None:
        await rig.up()
        gateway = rig.registry.services["gateway"]
        assert {p for p, i in rig.fake.programs.items() if i.state == "RUNNING"} >= {
            "gateway.0a", "gateway.1a", "gateway.2a"}
        outcome = await rolling.roll(rig.orchestrator, gateway)
        assert outcome.ready, outcome
        programs = rig.fake.programs
        assert all(programs[f"gateway.{w}b"].state == "RUNNING" for w in range(3))
        assert all(programs[f"gateway.{w}a"].state == "STOPPED" for w in range(3))
        worker = [(e.action, e.slot) for e in rig.events() if e.worker and e.action != "start"]
        rolled = worker[3:]  # after the three of `up`
        assert rolled == [x for w in range(3) for x in (("ready", f"gateway.{w}b"),
                                                        ("drain", f"gateway.{w}a"))]
        starts = [c for c in rig.fake.calls if c[0] == "start" and c[1].startswith("gateway")]
        # one at a time: worker 1's new slot starts only after worker 0's is ready
        assert [c[1] for c in starts] == ["gateway.0a", "gateway.1a", "gateway.2a",
                                          "gateway.0b", "gateway.1b", "gateway.2b"]
        assert rig.entry("gateway").ready and rig.actions("gateway")[-1] == "rolled"

    _run(test)


def test_a_slot_that_never_gets_ready_leaves_the_old_one_serving(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK + HELD)

    async def test() -> None:
        await rig.up()
        rig.fake.behaviour("gateway.1b").never_ready = True
        outcome = await rolling.roll(rig.orchestrator, rig.registry.services["gateway"])
        assert not outcome.ready
        assert outcome.reason is not None and outcome.reason.startswith("worker gateway:1")
        assert "the old process still serves" in outcome.reason
        programs = rig.fake.programs
        assert programs["gateway.0b"].state == "RUNNING"  # worker 0 rolled before
        assert programs["gateway.1a"].state == "RUNNING"  # worker 1's old slot serves on
        assert programs["gateway.1b"].state == "STOPPED"
        assert programs["gateway.2a"].state == "RUNNING"  # worker 2 was never touched
        assert ("start", "gateway.2b") not in rig.fake.calls
        failed = [e for e in rig.events() if e.slot == "gateway.1b" and e.action == "failed"]
        assert len(failed) == 1 and failed[0].to == "down"

    _run(test)


def test_reload_restarts_only_the_service_whose_definition_changed(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)

    async def test() -> None:
        await rig.up()
        rig.fake.changed = ["live"]
        found = await rolling.reload(rig.registry, rig.orchestrator, force=False)
        assert found.changed == ["live"] and not found.added and not found.removed
        assert rig.fake.starts == {"crashy": 1, "live": 2}
        assert ("remove_group", "live") in rig.fake.calls and ("add_group", "live") in (
            rig.fake.calls)
        assert "reload" in rig.actions("live") and "reload" not in rig.actions("crashy")
        assert rig.entry("live").ready and rig.entry("crashy").ready

    _run(test)
