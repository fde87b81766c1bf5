"""The view's pure parts: rows from a state, who-listens cache, sampler, log filter, the grid,
and `restart`'s order with no names."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psutil
from textual.app import App, ComposeResult

from ollamamax_stack.commands.control import _every_service
from ollamamax_stack.registry import load_registry
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import Status, WorkerStatus
from ollamamax_stack.supervise.orchestrator import service_state
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.view.grid import StackGrid
from ollamamax_stack.view.listening import ListeningCache
from ollamamax_stack.view.logpane import LogSource, pattern
from ollamamax_stack.view.rows import Row, age, rows, size
from ollamamax_stack.view.sample import Sample, Sampler

BASIC = Path(__file__).resolve().parents[1] / "fixtures" / "stacks" / "basic" / "ports.toml"
NOW = 1_000_000.0


def _state() -> st.State:
    gateway = st.ServiceState(name="gateway", ports={"main": 13100},
                              url="http://127.0.0.1:13100", state=Status.READY, pid=10,
                              restarts=2, ready_ms=840, started_at=NOW - 30)
    gateway.workers = [
        {"name": "gateway:0", "slot": "gateway.0b", "pid": 10, "state": WorkerStatus.SERVING},
        {"name": "gateway:0", "slot": "gateway.0a", "pid": 9, "state": WorkerStatus.DRAINING}]
    inference = st.ServiceState(name="inference", ports={"api": 8080, "web": 8081},
                                url="http://127.0.0.1:8080", state=Status.FATAL,
                                reason="restart limit 3 reached")
    ollama = st.ServiceState(name="ollama", ports={"main": 11434}, url="http://127.0.0.1:11434",
                             external=True, state=Status.READY, ready_ms=4)
    return st.State(phase="running", services={"gateway": gateway, "inference": inference,
                                               "ollama": ollama})


def test_rows_follow_status_order_with_workers_under_their_service() -> None:
    samples = {10: Sample(12.5, 48 << 20, NOW - 75), 9: Sample(None, 50 << 20, NOW - 4000)}
    found = rows(_state(), samples, NOW)
    assert [r.row_id for r in found] == ["gateway", "gateway:0/gateway.0b",
                                         "gateway:0/gateway.0a", "inference", "ollama"]
    gateway = found[0].cells()
    assert gateway == ("gateway", "ready", "840 ms", "13100", "http://127.0.0.1:13100", "10",
                       "gateway.0b", "1m15s", "2", "12.5%", "48M")
    draining = found[2]
    assert draining.key == "gateway:0" and draining.state == "draining"
    assert draining.cpu == "-" and draining.age == "1h06m" and not draining.healthy
    inference = found[3]
    assert inference.label == "fatal: restart limit 3 reached" and inference.pid is None
    assert inference.ports == "api=8080, web=8081" and inference.age == "-"
    assert found[4].slot == "external" and found[4].pid is None


def test_age_and_size_read_as_a_person_writes_them() -> None:
    assert [age(s) for s in (None, -1, 0, 59, 60, 3599, 3600, 86400 + 7200)] == [
        "-", "-", "0s", "59s", "1m00s", "59m59s", "1h00m", "1d02h"]
    assert [size(b) for b in (None, 0, 5 << 20, 1536 << 20)] == ["-", "0M", "5M", "1.5G"]


def test_listening_cache_scans_again_only_when_its_answer_may_be_wrong() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holders = {1: child.pid}
    scans: list[set[int]] = []

    def scan(ports: set[int]) -> dict[int, int]:
        scans.append(set(ports))
        return {p: holders[p] for p in ports if p in holders}

    cache = ListeningCache(scan, stale=3600)
    try:
        assert cache({1}) == {1: child.pid} and cache({1}) == {1: child.pid}
        assert len(scans) == 1  # nothing changed: no second scan
        cache({1, 2})  # other ports asked
        cache({1, 2})  # port 2 has nobody, but it is not stale yet
        assert len(scans) == 2
        child.kill()
        child.wait(10)
        holders[1] = 999_999_999
        assert cache({1, 2}) == {1: 999_999_999}  # a pid it gave died: scanned again
        assert len(scans) == 3
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    stale = ListeningCache(lambda ports: {}, stale=0)
    stale({5})
    stale({5})
    assert stale.scans == 2  # a port nobody listened on is asked again once stale


def test_sampler_gives_cpu_from_the_second_look_and_forgets_the_dead() -> None:
    sampler = Sampler()
    me = psutil.Process().pid
    first = sampler.sample([me])
    assert first[me].cpu is None and first[me].rss > 0
    sum(i * i for i in range(200_000))  # some CPU between the looks
    second = sampler.sample([me, 999_999_999])
    assert second[me].cpu is not None and second[me].cpu >= 0 and 999_999_999 not in second
    assert sampler.sample_over([], 10) == {}  # nothing to sample: no wait


def test_log_filter_is_a_regex_or_else_literal_text(tmp_path: Path) -> None:
    assert pattern("") is None
    assert pattern("err(or)?").search("An ERROR here")  # type: ignore[union-attr]
    assert pattern("[unclosed").search("a [unclosed bracket")  # type: ignore[union-attr]
    log = tmp_path / "gateway.log"
    log.write_text("ready\nerror one\nok\n")
    source = LogSource(log, "error")
    assert source.backlog() == ["error one"]
    with open(log, "a") as handle:
        handle.write("error two\nfine\npartial err")
    assert source.poll() == ["error two"]  # the partial line waits for its end
    assert LogSource(log).backlog() == ["ready", "error one", "ok", "error two", "fine",
                                       "partial err"]


def _row(key: str, service: str | None = None, state: str = "ready") -> Row:
    return Row(key=key, service=service or key, state=state, reason="", ready_after="",
               ports="1", url="", pid=1, slot="-", age="1s", restarts="0", cpu="-", mem="-",
               healthy=state == "ready")


class _GridApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.highlighted: list[str] = []

    def compose(self) -> ComposeResult:
        yield StackGrid(id="grid")

    def on_stack_grid_highlighted(self, message: StackGrid.Highlighted) -> None:
        self.highlighted.append(message.row.row_id)


def test_grid_keeps_the_cursor_on_its_row_and_arrows_move_it() -> None:
    async def drive() -> None:
        app = _GridApp()
        async with app.run_test(size=(80, 24)) as pilot:
            grid = app.query_one("#grid", StackGrid)
            grid.focus()
            grid.show([_row("a"), _row("b"), _row("c")])
            await pilot.press("down", "down", "down")
            assert grid.selected is not None and grid.selected.key == "c"
            grid.show([_row("c"), _row("a")])  # reordered: still on c
            assert grid.selected.key == "c" and grid.cursor == 0
            await pilot.press("up")  # at the top already
            await pilot.pause()
            assert app.highlighted[0] == "a" and app.highlighted[-1] == "c"
            assert grid.lines()[0].split()[:3] == ["c", "ready", "1"]

    asyncio.run(drive())


def test_restart_with_no_names_takes_running_services_dependencies_first(
        tmp_path: Path) -> None:
    registry = load_registry(BASIC, run_dir=tmp_path)
    state = st.State(phase="running", services={
        s.name: service_state(registry, s) for s in reversed(registry.managed)})
    state.services["stubborn"].state = Status.STOPPED
    st.save(RunPaths(registry.run_dir), state)
    order = _every_service(registry)
    assert sorted(order) == ["api", "db", "edge", "worker"]  # stubborn is stopped
    assert order.index("db") < order.index("api") < order.index("edge")
    assert order.index("worker") < order.index("edge")


def test_top_keys_without_a_running_stack_filter_help_full_log_and_external(
        tmp_path: Path) -> None:
    from textual.widgets import Input, Log

    from ollamamax_stack.view.app import TopApp
    from tests.fixtures.stacks.harness import held_config

    registry = load_registry(held_config(tmp_path), run_dir=tmp_path / "run")
    (tmp_path / "run" / "logs").mkdir(parents=True)
    (tmp_path / "run" / "logs" / "gateway.log").write_text("one\nrestart two\nthree\n")
    st.save(RunPaths(registry.run_dir), st.State(phase="running", services={
        s.name: service_state(registry, s) for s in registry.active}))

    async def drive() -> None:
        app = TopApp(registry, lambda: registry)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            grid = app.query_one("#table", StackGrid)
            assert [line.split()[0] for line in grid.lines()] == ["gateway", "inference",
                                                                   "ollama"]
            await pilot.press("slash", "r", "s", "q", "R", "enter")  # typed, not keys
            assert app.is_running and app.query_one("#filter", Input).value == "rsqR"
            await pilot.press("slash", *"restart", "enter")
            log = app.query_one("#log", Log)
            assert [str(line) for line in log.lines] == ["restart two"]
            activity = app.query_one("#activity", Log)
            assert not any("$ ollamamax" in str(line) for line in activity.lines)
            await pilot.press("question_mark")
            assert app.screen.__class__.__name__ == "HelpScreen"
            await pilot.press("escape")
            assert app.screen.__class__.__name__ != "HelpScreen"
            await pilot.press("l")
            assert app.screen.has_class("fullscreen")
            await pilot.press("l", "down", "down", "r")  # ollama: external
            assert any("ollama is external" in str(line) for line in activity.lines), (
                grid.cursor, app.focused, [str(x) for x in activity.lines])
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(drive())
