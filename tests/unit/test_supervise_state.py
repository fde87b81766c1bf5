"""Stack state: how services' states add up to up/degraded/starting/down; log following."""

from __future__ import annotations

from pathlib import Path

from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.listener import parse
from ollamamax_stack.supervise.logs import Follower, tail
from ollamamax_stack.supervise.machine import Status
from ollamamax_stack.supervise.paths import RunPaths


def _state(*states: Status, phase: st.Phase = "running") -> st.State:
    services = {f"s{i}": st.ServiceState(name=f"s{i}", ports={"main": 1000 + i}, url="u",
                                         state=s)
                for i, s in enumerate(states)}
    return st.State(phase=phase, services=services)


def test_the_stack_is_up_only_when_every_service_is_ready() -> None:
    assert _state(Status.READY, Status.READY).stack() == "up"
    # A service the stack needs gave up (fatal) or never started: failed, not degraded.
    assert _state(Status.READY, Status.FATAL).stack() == "failed"
    assert _state(Status.READY, Status.FAILED).stack() == "failed"
    optional = _state(Status.READY, Status.FATAL)
    optional.services["s1"].optional = True
    assert optional.stack() == "degraded"
    assert _state(Status.READY, Status.UNREACHABLE).stack() == "degraded"
    assert _state(Status.READY, Status.STARTING).stack() == "starting"
    assert _state(Status.READY, phase="starting").stack() == "starting"
    assert _state(Status.READY, phase="down").stack() == "down"
    assert _state(Status.READY, Status.STOPPED).reasons() == ["s1: stopped"]


def test_state_round_trips_through_the_run_dir(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    with st.locked(paths) as state:
        state.phase = "running"
        state.services["a"] = st.ServiceState(name="a", ports={"main": 5}, url="http://x:5")
    st.update_service(paths, "a", lambda e: setattr(e, "restarts", 3))
    loaded = st.load(paths)
    assert loaded.phase == "running" and loaded.services["a"].restarts == 3
    assert loaded.services["a"].as_status() == {
        "name": "a", "state": "starting", "ready": False, "pid": None, "ports": {"main": 5},
        "restarts": 3, "url": "http://x:5", "reason": None, "ready_ms": None}
    assert st.load(RunPaths(tmp_path / "missing")).stack() == "down"


def test_follower_returns_whole_lines_once(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("old\n")
    follower = Follower()
    follower.add("a", log)
    with open(log, "a") as handle:
        handle.write("one\ntw")
    assert follower.poll() == [("a", "one")]
    with open(log, "a") as handle:
        handle.write("o\n")
    assert follower.poll() == [("a", "two")]
    assert follower.poll() == []
    assert tail(log, 2) == ["one", "two"]
    assert tail(tmp_path / "none.log", 5) == []


def test_listener_events_are_parsed_from_header_and_payload() -> None:
    event = parse(b"ver:3.0 server:supervisor serial:21 pool:w poolserial:10 "
                  b"eventname:PROCESS_STATE_EXITED len:71\n",
                  b"processname:api groupname:api from_state:RUNNING expected:0 pid:2766")
    assert event.name == "PROCESS_STATE_EXITED" and event.fields["pid"] == "2766"
