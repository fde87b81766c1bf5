"""The service state machine: legal moves only, each one an event; `ready` is derived."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from ollamamax_stack.supervise import events
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import MOVES, OBSERVED, Event, IllegalMove, Status
from ollamamax_stack.supervise.paths import RunPaths

SUPERVISE = Path(__file__).resolve().parents[2] / "ollamamax_stack" / "supervise"


def _entry(state: Status = Status.STARTING) -> st.ServiceState:
    return st.ServiceState(name="api", ports={"main": 5}, url="http://x:5", state=state, pid=7)


def test_a_move_is_an_event_and_ready_follows_the_state() -> None:
    entry = _entry()
    event = entry.move(Status.READY, detail="after 12 ms")
    assert entry.ready and entry.reason is None
    assert (event.service, event.before, event.to, event.reason, event.pid) == (
        "api", "starting", "ready", "after 12 ms", 7)
    assert event.time > 0
    crash = entry.move(Status.RESTARTING, "exited with status 1", action="crash")
    assert not entry.ready and crash.action == "crash" and crash.reason == "exited with status 1"


def test_illegal_moves_are_refused_and_change_nothing() -> None:
    entry = _entry(Status.STOPPED)
    with pytest.raises(IllegalMove, match="stopped -> ready"):
        entry.move(Status.READY)
    assert entry.state == Status.STOPPED
    with pytest.raises(IllegalMove):
        _entry(Status.FATAL).move(Status.RESTARTING)
    for seen in OBSERVED:  # what status observes is never a state the machine moves to
        assert all(seen not in targets for targets in MOVES.values())
        with pytest.raises(IllegalMove):
            _entry(Status.READY).move(seen)


def test_every_state_of_the_machine_can_be_stopped_and_left() -> None:
    for state, targets in MOVES.items():
        assert targets, state
        if state != Status.STOPPED:
            assert Status.STOPPED in targets, state


def test_state_json_keeps_its_shape_with_a_derived_ready(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    with st.locked(paths) as state:
        state.services["api"] = _entry()
    event = st.update_service(paths, "api", lambda e: e.move(Status.READY))
    assert event is not None and event.to == "ready"
    raw = json.loads(paths.state.read_text())["services"]["api"]
    assert raw["state"] == "ready" and raw["ready"] is True
    loaded = st.load(paths).services["api"]
    assert loaded.state is Status.READY and loaded.ready
    raw["state"] = "hibernating"  # written by some other version
    paths.state.write_text(json.dumps({"phase": "running", "services": {"api": raw}}))
    assert st.load(paths).services["api"].state == Status.STOPPED


def test_only_the_machine_assigns_a_state() -> None:
    offenders = []
    for path in sorted(SUPERVISE.glob("*.py")):
        if path.name in ("state.py", "machine.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                for leaf in ast.walk(target):
                    # `result.state` is an UpResult's whole stack state, not a service's
                    if (isinstance(leaf, ast.Attribute) and leaf.attr == "state"
                            and not (isinstance(leaf.value, ast.Name)
                                     and leaf.value.id == "result")):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_events_rotate_by_size_and_read_back_in_order(tmp_path: Path) -> None:
    for n in range(40):
        events.append(tmp_path, Event(service="api", action="crash", to="restarting",
                                      restarts=n), max_bytes=1500)
    assert (tmp_path / "events.jsonl.1").exists()
    kept = events.read(tmp_path)
    assert [e.restarts for e in kept] == list(range(40 - len(kept), 40)) and len(kept) > 10
    later = [e for e in kept if e.restarts >= 35]
    assert events.read(tmp_path, since=later[0].time)[-5:] == later


def test_following_crosses_a_rotation(tmp_path: Path) -> None:
    events.append(tmp_path, Event(service="api", action="start", to="starting"))
    import threading
    import time

    def write() -> None:
        time.sleep(0.2)
        for n in range(30):
            events.append(tmp_path, Event(service="api", action="restart", to="restarting",
                                          restarts=n), max_bytes=2000)
            time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    seen = []
    for event in events.follow(tmp_path, period=0.01, stop=time.monotonic() + 10):
        seen.append(event)
        if event.restarts == 29:
            break
    writer.join()
    assert (tmp_path / "events.jsonl.1").exists()
    assert [e.action for e in seen[:1]] == ["start"]
    assert [e.restarts for e in seen[1:]] == list(range(30))
