"""One-shot tasks and depends_on conditions, against the in-memory supervisord: the real
orchestrator and watcher, no process (tests/integration/test_supervise_tasks.py runs them for
real). Also the model's rules for tasks and conditions, and the machine's moves of a task.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import IllegalMove, Status, check
from ollamamax_stack.supervise.orchestrator import service_state
from tests.unit.test_supervise_replay import Rig

STACK = """
[stack]
name = "tasks"
root = "."
run_dir = "run"

[services.db]
port = 30101
command = "true"
readiness = { http = "/ready", timeout = 2, period = 0.005 }

[services.slow]
port = 30102
command = "true"
readiness = { http = "/ready", timeout = 2, period = 0.005 }

[services.migrate]
kind = "task"
command = "true"
depends_on = ["db"]

[services.api]
port = 30103
command = "true"
depends_on = { migrate = "completed", db = "ready", slow = "started" }
readiness = { http = "/ready", timeout = 2, period = 0.005 }
"""


def _start(rig: Rig) -> dict[str, object]:
    async def run() -> dict[str, object]:
        with st.locked(rig.paths) as state:
            state.phase = "starting"
            state.services = {s.name: service_state(rig.registry, s)
                              for s in rig.registry.active}
        return dict(await rig.orchestrator.start([]))

    return asyncio.run(run())


def test_a_dependent_waits_for_completed_and_ready_but_only_for_started(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)
    rig.fake.behaviour("migrate").exits_after = 0.05
    rig.fake.behaviour("slow").ready_after = 0.5
    outcomes = _start(rig)
    assert all(o.ready for o in outcomes.values()), outcomes  # type: ignore[attr-defined]
    starts = [name for call, name in rig.fake.calls if call == "start"]
    assert starts.index("api") > starts.index("migrate") > starts.index("db")
    actions = [(e.service, e.action) for e in rig.events()]
    # api was ready before slow was: "started" does not wait for its readiness
    assert actions.index(("api", "ready")) < actions.index(("slow", "ready"))
    assert actions.index(("migrate", "completed")) < actions.index(("api", "start"))
    migrate = rig.entry("migrate")
    assert migrate.state == Status.COMPLETED and migrate.pid is None


def test_a_failed_task_fails_with_its_exit_status_and_its_dependents_are_skipped(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)
    rig.fake.behaviour("migrate").exits_after = 0.01
    rig.fake.behaviour("migrate").exit_status = 3
    outcomes = _start(rig)
    reason = outcomes["migrate"].reason  # type: ignore[attr-defined]
    assert reason == "exited with status 3; it logged nothing"
    assert rig.entry("migrate").state == Status.FAILED
    assert rig.entry("api").state == Status.SKIPPED
    assert ("start", "api") not in rig.fake.calls


def test_the_watcher_never_restarts_a_completed_task(tmp_path: Path) -> None:
    rig = Rig(tmp_path, STACK)
    rig.fake.behaviour("migrate").exits_after = 0.01

    async def test() -> None:
        await rig.up()
        for _ in range(5):
            await rig.watcher.reconcile()
        rig.stop_watching()

    asyncio.run(test())
    assert rig.fake.starts["migrate"] == 1
    assert rig.entry("migrate").state == Status.COMPLETED
    assert st.load(rig.paths).stack() == "up"  # a completed task does not degrade the stack


def test_a_task_moves_to_completed_or_failed_and_never_restarts() -> None:
    check("migrate", Status.STARTING, Status.COMPLETED)
    check("migrate", Status.COMPLETED, Status.STOPPED)  # down
    check("migrate", Status.COMPLETED, Status.STARTING)  # restart runs it again
    with pytest.raises(IllegalMove):
        check("migrate", Status.COMPLETED, Status.RESTARTING)


def test_a_task_needs_no_port_and_gets_no_port_env(tmp_path: Path) -> None:
    registry = load_registry(_write(tmp_path, STACK), offset=7)
    migrate = registry.services["migrate"]
    assert migrate.port_map == {} and registry.url(migrate) == ""
    assert migrate.conditions == {"db": "ready"}  # the list form means ready
    env = service_environment(registry, migrate)
    assert "PORT" not in env and "OLLAMAMAX_MIGRATE_URL" not in env
    assert env["OLLAMAMAX_DB_URL"] == "http://127.0.0.1:30108"
    assert registry.services["api"].conditions == {
        "migrate": "completed", "db": "ready", "slow": "started"}


def _write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "ports.toml"
    config.write_text(text)
    return config


@pytest.mark.parametrize(("old", "new", "said"), [
    ('db = "ready"', 'db = "completed"', "services.api.depends_on.db"),
    ('db = "ready"', 'db = "healthy"', "depends_on"),
    ('kind = "task"\n', 'kind = "task"\nliveness = { tcp = true }\n', "a task runs once"),
    ('kind = "task"\n', 'kind = "job"\n', "kind"),
])
def test_bad_task_settings_are_refused_naming_the_key(tmp_path: Path, old: str, new: str,
                                                      said: str) -> None:
    assert old in STACK
    with pytest.raises(RegistryError) as raised:
        load_registry(_write(tmp_path, STACK.replace(old, new, 1)))
    assert said in str(raised.value)


WATCHED = """
[stack]
name = "watched"
root = "."
run_dir = "run"

[services.gateway]
port = 30301
command = "ollamamax serve gateway"
watch = ["src/*.py"]
readiness = { http = "/health/ready", timeout = 0.3, period = 0.005 }
"""


def _watch_reasons(rig: Rig) -> list[str]:
    return [e.reason or "" for e in rig.events("gateway") if e.action == "watch"]


def test_a_save_rolls_a_held_service_and_a_save_during_the_roll_rolls_it_again(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path, WATCHED)
    saved = tmp_path / "src" / "app.py"

    async def test() -> None:
        await rig.up()
        gateway = rig.registry.services["gateway"]
        rig.watcher._roll_changed(gateway, [saved])
        rig.watcher._roll_changed(gateway, [saved, saved])  # while the first roll runs
        await rig.watch(lambda: rig.actions("gateway").count("rolled") == 2
                        and not rig.watcher.busy, "two rolls")
        rig.stop_watching()

    asyncio.run(test())
    assert _watch_reasons(rig) == ["src/app.py changed: rolling"] * 2
    assert sum(rig.fake.starts.values()) == 3  # up, then one new slot per roll


def test_a_save_whose_new_process_never_gets_ready_keeps_the_old_one(tmp_path: Path) -> None:
    rig = Rig(tmp_path, WATCHED)

    async def test() -> None:
        await rig.up()
        serving = rig.entry("gateway").pid
        rig.fake.behaviour("gateway.0b").never_ready = True  # the idle slot the roll starts
        rig.watcher._roll_changed(rig.registry.services["gateway"], [tmp_path / "src/a.py"])
        await rig.watch(lambda: any(r.startswith("not rolled") for r in _watch_reasons(rig)),
                        "the failed roll")
        rig.stop_watching()
        assert rig.entry("gateway").pid == serving and rig.entry("gateway").ready
        assert rig.fake.programs["gateway.0a"].state == "RUNNING"

    asyncio.run(test())
    reason = _watch_reasons(rig)[-1]
    assert "gateway.0b" in reason and reason.endswith("the old process still serves"), reason
