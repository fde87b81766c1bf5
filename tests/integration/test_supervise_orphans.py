"""Shell-construct commands: the pid that serves is shown, and a crash leaves no orphan behind."""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil

from tests.fixtures.stacks.harness import Stack


def _servers(stack: Stack, name: str) -> list[int]:
    """Live http.server processes of one service of the stack."""
    return [p.pid for p in stack.processes() if p.cmdline()[1:3] == ["-m", "http.server"]
            and p.environ().get("OLLAMAMAX_SERVICE") == name]


def test_status_shows_the_serving_pid_and_a_crash_ends_the_whole_group(make_stack: Any) -> None:
    stack = make_stack("shell")
    done = stack.cli("up", "-d")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("execd", "child"):
        server = stack.holder(stack.port(name))
        assert stack.service(name)["pid"] == server, name  # not the wrapping shell's
        assert "http.server" in " ".join(psutil.Process(server).cmdline())
    old = stack.service("child")["pid"]
    shell = psutil.Process(old).parent()
    assert shell is not None and os.path.basename(shell.cmdline()[0]).endswith("sh")
    os.kill(shell.pid, signal.SIGKILL)  # the process supervisord watches; the server is its child
    status = stack.wait_for(lambda s: any(x["name"] == "child" and x["ready"]
                                          and x["restarts"] == 1 for x in s["services"]),
                            what="child restarted")
    new = next(s for s in status["services"] if s["name"] == "child")["pid"]
    assert new != old and old not in _servers(stack, "child")
    assert _servers(stack, "child") == [new] == [stack.holder(stack.port("child"))]
    execd = stack.service("execd")["pid"]
    os.kill(execd, signal.SIGKILL)
    stack.wait_for(lambda s: any(x["name"] == "execd" and x["ready"] and x["restarts"] == 1
                                 for x in s["services"]), what="execd restarted")
    assert _servers(stack, "execd") == [stack.service("execd")["pid"]]
    assert stack.cli("down").returncode == 0
    stack.assert_clean()
