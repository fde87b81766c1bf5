"""`ollamamax top` through a real terminal, and the commands beside it (status, restart, run).

One `held` stack (gateway and inference on held sockets, a fake Ollama) for the module. `top`
is driven twice: by Textual's pilot in this process, and as a user runs it, in tmux at 80x24
(send-keys, capture-pane). Under client load (the openai client, no retries) `r` on the
gateway must give it a new pid with no request refused or failed, and `q` must leave the stack
up. Every wait is a readiness deadline, never a timed assertion.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from textual.pilot import Pilot
from textual.widgets import Log

from ollamamax_stack.view.app import TopApp
from ollamamax_stack.view.grid import StackGrid
from tests.chat_load import ChatLoad
from tests.fixtures.stacks.harness import ROOT, Stack, held_config, running_with_fake_ollama
from tests.integration.test_held_sockets import FAST, TOKEN_DELAY, HeldStack
from tests.system import missing_program

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeldStack]:
    tmp = tmp_path_factory.mktemp("top")
    made = HeldStack("held", tmp / "run", held_config(tmp))
    with running_with_fake_ollama(made, "--token-delay", TOKEN_DELAY, env=FAST):
        yield made


def _load(stack: HeldStack) -> ChatLoad:
    return ChatLoad(stack.registry.url(stack.registry.services["gateway"]))


def _gateway_pid(stack: HeldStack) -> int:
    (pid,) = stack.gateway().values()
    return pid


def _assert_nothing_dropped(load: ChatLoad) -> None:
    tally = load.tally()
    print(f"\n{tally.line()}")
    assert tally.refused == tally.failed == tally.broken_streams == tally.in_flight == 0, (
        tally.errors)
    assert tally.ok > 0 and tally.streams_ok > 0


def _service_line(screen: str, name: str) -> str:
    return next((line for line in screen.splitlines() if line.split()[:1] == [name]), "")


def _lists_every_service(stack: Stack, screen: str) -> bool:
    """Each service on a line of its own, with its state (ready) and its port."""
    for service in stack.registry.active:
        line = _service_line(screen, service.name)
        if "ready" not in line or str(service.primary_port) not in line:
            return False
    return True


# -- Textual's pilot ---------------------------------------------------------------------------

async def _until(pilot: Pilot[None], holds: Callable[[], bool], what: str,
                 timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"top never showed {what}"
        await pilot.pause(0.1)


def _table_lines(app: TopApp) -> str:
    """The table's rows as text, one line each (every column)."""
    return "\n".join(app.query_one("#table", StackGrid).lines())


def test_pilot_r_rolls_the_gateway_under_load_and_q_leaves_the_stack_up(
        stack: HeldStack) -> None:
    before = _gateway_pid(stack)

    async def drive() -> None:
        app = TopApp(stack.registry, lambda: stack.registry)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(pilot, lambda: _lists_every_service(stack, _table_lines(app)),
                         "every service ready with its port")
            assert str(before) in _service_line(_table_lines(app), "gateway")
            rows = [line.split()[0] for line in _table_lines(app).splitlines()]
            for _ in range(rows.index("gateway")):
                await pilot.press("down")
            with _load(stack) as load:
                await asyncio.to_thread(load.wait_completed, 30)
                await pilot.press("r")
                activity = app.query_one("#activity", Log)
                await _until(pilot, lambda: any(line.strip().startswith("exit ")
                                                for line in activity.lines), "the restart end")
                assert "  exit 0" in activity.lines, activity.lines
                after = _gateway_pid(stack)
                assert after != before and not psutil.pid_exists(before)
                await _until(pilot, lambda: str(after) in _service_line(_table_lines(app),
                                                                        "gateway"),
                             f"the new gateway pid {after}")
                await asyncio.to_thread(load.wait_completed, 10)
            _assert_nothing_dropped(load)
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(drive())
    seen = stack.status()
    assert seen["stack"] == "up" and seen["exit"] == 0, seen


def test_pilot_s_stops_and_starts_the_gateway_and_R_reloads(stack: HeldStack) -> None:
    async def drive() -> None:
        app = TopApp(stack.registry, lambda: stack.registry)
        async with app.run_test(size=(80, 24)) as pilot:
            activity = app.query_one("#activity", Log)

            async def act(key: str, command: str) -> list[str]:
                """Press `key`; the activity lines from `$ ollamamax COMMAND` to its exit."""
                await pilot.press(key)

                def said() -> list[str]:
                    lines = [str(line) for line in activity.lines]
                    shown = f"$ ollamamax {command}"
                    return lines[lines.index(shown):] if shown in lines else []

                await _until(pilot, lambda: any(line.startswith("  exit ") for line in said()),
                             f"the end of {command}")
                return said()

            await _until(pilot, lambda: _lists_every_service(stack, _table_lines(app)),
                         "every service ready")
            said = await act("s", "stop gateway")  # the cursor starts on the gateway
            assert "  exit 0" in said, said
            await _until(pilot, lambda: "stopped" in _service_line(_table_lines(app),
                                                                   "gateway"), "stopped")
            assert stack.service("gateway")["state"] == "stopped"
            said = await act("s", "start gateway")
            assert "  exit 0" in said, said
            await _until(pilot, lambda: "ready" in _service_line(_table_lines(app),
                                                                 "gateway"), "ready again")
            said = await act("R", "reload")
            assert any("nothing changed" in line for line in said), said
            await pilot.press("q")

    try:
        asyncio.run(drive())
    finally:  # the next tests need the gateway, whatever went wrong here
        if stack.service("gateway")["state"] != "ready":
            stack.cli("start", "gateway")
    assert stack.status()["stack"] == "up"


# -- a real terminal: tmux ---------------------------------------------------------------------

class Tmux:
    """A tmux server of our own (its own socket), one 80x24 window running a command."""

    def __init__(self, socket: Path, command: str) -> None:
        self.socket = socket
        subprocess.run(["tmux", "-S", str(socket), "new-session", "-d", "-s", "top",
                        "-x", "80", "-y", "24", command], check=True, cwd=ROOT)
        shown = subprocess.run(["tmux", "-S", str(socket), "display-message", "-p",
                                "#{pid}"], capture_output=True, text=True, check=True)
        self.pid = int(shown.stdout.strip())

    def screen(self) -> str:
        """The window's text now."""
        return subprocess.run(["tmux", "-S", str(self.socket), "capture-pane", "-p", "-t",
                               "top"], capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        """Type keys into the window."""
        subprocess.run(["tmux", "-S", str(self.socket), "send-keys", "-t", "top", *keys],
                       check=True)

    def wait(self, holds: Callable[[str], bool], what: str, timeout: float = 60.0) -> str:
        """The first screen on which `holds` is true."""
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while not holds(screen):
            assert time.monotonic() < deadline, f"the terminal never showed {what}:\n{screen}"
            time.sleep(0.2)
            screen = self.screen()
        return screen

    def close(self) -> None:
        """End our tmux server (by its pid) and what runs in it."""
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True)
        try:
            psutil.Process(self.pid).kill()
        except psutil.Error:
            pass


def test_tmux_top_lists_the_stack_rolls_the_gateway_and_quits_leaving_it_up(
        stack: HeldStack, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        missing_program("tmux", "tmux")
    done = tmp_path / "top.exit"
    command = (f"{shlex.join(stack.argv('top'))}; echo $? > {shlex.quote(str(done))}; "
               "sleep 600")
    tmux = Tmux(tmp_path / "tmux.sock", command)
    try:
        first = tmux.wait(lambda s: _lists_every_service(stack, s),
                          "every service ready with its port")
        (tmp_path.parent / "top-screen.txt").write_text(first)
        print(f"\n--- top at 80x24 ---\n{first}")
        before = _gateway_pid(stack)
        assert str(before) in _service_line(first, "gateway")
        with _load(stack) as load:
            load.wait_completed(30)
            tmux.keys("r")  # the cursor starts on the first row: the gateway
            tmux.wait(lambda s: re.search(r"^\s+exit \d+", s, re.M) is not None,
                      "the restart end")
            after = _gateway_pid(stack)
            assert after != before and not psutil.pid_exists(before)
            rolled = tmux.wait(lambda s: str(after) in _service_line(s, "gateway"),
                               f"the new gateway pid {after}")
            assert re.search(r"^\s+exit 0", rolled, re.M), rolled
            load.wait_completed(10)
        _assert_nothing_dropped(load)
        tmux.keys("q")
        left = tmux.wait(lambda s: "the stack keeps running" in s, "top's goodbye")
        deadline = time.monotonic() + 30
        while not done.exists():
            assert time.monotonic() < deadline, left
            time.sleep(0.1)
        assert done.read_text().strip() == "0"
    finally:
        tmux.close()
    seen = stack.status()
    assert seen["stack"] == "up" and seen["exit"] == 0, seen
    assert _gateway_pid(stack) == after


def test_up_tui_starts_the_stack_then_the_view_and_q_leaves_it_running(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        missing_program("tmux", "tmux")
    basic = Stack("basic", tmp_path / "run")
    done = tmp_path / "up.exit"
    command = (f"{shlex.join(basic.argv('up', '--tui'))}; echo $? > {shlex.quote(str(done))}; "
               "sleep 600")
    tmux: Tmux | None = None
    try:
        tmux = Tmux(tmp_path / "tmux.sock", command)
        tmux.wait(lambda s: _lists_every_service(basic, s) and "basic: up" in s,
                  "every service of basic ready with its port", timeout=120)
        tmux.keys("q")
        tmux.wait(lambda s: "the stack keeps running" in s, "up --tui's goodbye")
        deadline = time.monotonic() + 30
        while not done.exists():
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.1)
        assert done.read_text().strip() == "0"
        seen = basic.status()
        assert seen["stack"] == "up" and seen["exit"] == 0, seen
        down = basic.cli("down")
        assert down.returncode == 0, down.stdout + down.stderr
        basic.assert_clean()
    finally:
        if tmux is not None:
            tmux.close()
        basic.cleanup()


# -- the commands beside it --------------------------------------------------------------------

def test_restart_with_no_names_rolls_every_service_dependencies_first(
        stack: HeldStack) -> None:
    before = {s["name"]: s["pid"] for s in stack.status()["services"] if s["pid"]}
    with _load(stack) as load:
        load.wait_completed(30)
        done = stack.cli("restart", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        load.wait_completed(10)
    _assert_nothing_dropped(load)
    after = {s["name"]: s["pid"] for s in stack.status()["services"] if s["pid"]}
    assert set(before) == set(after) == {"gateway", "inference"}
    assert all(after[n] != before[n] for n in before), (before, after)
    said = [line.split("|")[0].strip().split(":")[0] for line in done.stdout.splitlines()
            if "|" in line and "draining" in line]
    assert said.index("inference") < said.index("gateway"), done.stdout  # dependencies first
    both = stack.cli("restart", "gateway", "--all")
    assert both.returncode == 2 and "names or --all" in both.stderr, both.stderr


def test_run_gives_the_command_the_service_environment_and_its_exit_code(
        stack: HeldStack) -> None:
    script = ("import os, sys; print(os.environ['PORT'], os.environ['OLLAMAMAX_INFERENCE_URL']);"
              " sys.exit(7)")
    done = stack.cli("run", "gateway", "--", sys.executable, "-c", script)
    assert done.returncode == 7, done.stderr
    inference = stack.registry.url(stack.registry.services["inference"])
    assert done.stdout.split() == [str(stack.port("gateway")), inference]
    # Options after SERVICE are the command's, with or without `--`.
    echoed = stack.cli("run", "inference", "sh", "-c", 'echo "$PORT_API" --help')
    assert echoed.returncode == 0 and echoed.stdout.split() == [
        str(stack.registry.services["inference"].port_map["api"]), "--help"], echoed
    missing = stack.cli("run", "gateway", "--", "no-such-program-here")
    assert missing.returncode == 127, missing
    assert missing.stderr.strip() == ("ollamamax: error: run: no-such-program-here: "
                                      "command not found")
    unknown = stack.cli("run", "nosuch", "--", "true")
    assert unknown.returncode != 0 and "nosuch" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_status_shows_age_restarts_cpu_and_memory_and_watch_redraws(stack: HeldStack) -> None:
    text = stack.cli("status").stdout
    header = next(line for line in text.splitlines() if "SERVICE" in line)
    for column in ("AGE", "RESTARTS", "CPU", "MEM"):
        assert column in header, header
    gateway = _service_line(text.replace("│", " "), "gateway")
    assert str(_gateway_pid(stack)) in gateway
    assert re.search(r"\d+\.\d%", gateway) and re.search(r"\b\d+M\b", gateway), gateway

    out = subprocess.Popen(stack.argv("status", "--watch", "--interval", "0.2"), cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ})
    try:
        assert out.stdout is not None
        titles = 0
        for line in out.stdout:
            titles += line.strip() == "held: up"
            if titles == 3:
                break
        assert titles == 3
        out.send_signal(signal.SIGINT)
        assert out.wait(30) == 0
    finally:
        if out.poll() is None:
            out.kill()
            out.wait(10)
