"""A process keeps the state it last wrote instead of parsing state.json again for each move;
another process's write, or a move that fails half way, must never be lost or kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import Event, IllegalMove, Status
from ollamamax_stack.supervise.paths import RunPaths

ROOT = Path(__file__).resolve().parents[2]

# Another process (a `stop` in another terminal, the watcher) moving service b.
FOREIGN = """
import sys
from pathlib import Path
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.machine import Status
from ollamamax_stack.supervise.paths import RunPaths

def change(entry):
    entry.restarts = 41
    return entry.move(Status.STOPPED, "stopped elsewhere")

st.update_service(RunPaths(Path(sys.argv[1])), "b", change)
"""


def _stack(paths: RunPaths) -> None:
    with st.locked(paths) as state:
        state.phase = "starting"
        for name in ("a", "b"):
            state.services[name] = st.ServiceState(name=name, ports={"main": 1}, url="u")


def _ready(entry: st.ServiceState) -> Event:
    entry.pid = 7
    return entry.move(Status.READY)


def _pid(pid: int) -> st.Change:
    def change(entry: st.ServiceState) -> None:
        entry.pid = pid

    return change


def test_a_write_by_another_process_is_read_not_the_kept_state(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    _stack(paths)
    st.update_service(paths, "a", _ready)  # now kept in this process
    subprocess.run([sys.executable, "-c", FOREIGN, str(tmp_path)], check=True, cwd=ROOT)
    st.update_service(paths, "a", _pid(8))
    after = st.load(paths).services
    assert (after["b"].state, after["b"].restarts) == (Status.STOPPED, 41)  # not overwritten
    assert (after["a"].state, after["a"].pid) == (Status.READY, 8)
    assert st.peek(paths).services["b"].reason == "stopped elsewhere"


def test_a_move_that_fails_half_way_is_not_kept(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    _stack(paths)
    st.update_service(paths, "a", _ready)

    def half(entry: st.ServiceState) -> Event:
        entry.pid = 99  # changed, then the move is refused: nothing may be saved or kept
        return entry.move(Status.FATAL)  # ready -> fatal is not a move of the machine

    with pytest.raises(IllegalMove):
        st.update_service(paths, "a", half)
    assert st.peek(paths).services["a"].pid == 7
    st.update_service(paths, "b", _ready)
    assert st.load(paths).services["a"].pid == 7


def test_peek_reads_what_the_file_says(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert st.peek(paths).phase == "down"  # no file
    _stack(paths)
    st.update_service(paths, "a", _ready)
    assert st.peek(paths).services["a"].state == Status.READY
    paths.state.write_bytes(b"[1, 2]")  # not a state: an empty one, never an exception
    assert st.peek(paths).services == {}
    assert st.load(paths).services == {}
