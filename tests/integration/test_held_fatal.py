"""A held service that is fatal or stopped refuses new clients at once instead of black-holing them.

The socket holder keeps a held port open while its service restarts, so nobody is refused
(tests/integration/test_held_sockets.py). Once nobody will serve the port — the restart limit
ended it `fatal`, or `ollamamax stop` stopped it — the holder closes it, and a client is refused
at once (it can try the next front end) instead of waiting in the backlog until its timeout.
"""

from __future__ import annotations

import http.client
import os
import signal
from collections.abc import Iterator

import pytest

from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.rpc import Supervisor
from tests.fixtures.stacks.harness import Stack, held_config, running_with_fake_ollama

pytestmark = pytest.mark.timeout(240)
LIMIT = 2
# A client that would wait forever in a black-holed backlog waits one second at most.
CLIENT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("held-fatal")

    def fatal_soon(text: str) -> str:
        # A small restart limit and a long stable window: a few kills in a row end it fatal.
        edited = text.replace(
            "restart = { limit = 1000, backoff = 0.05, max_backoff = 0.1, stable = 1 }",
            f"restart = {{ limit = {LIMIT}, backoff = 0.05, max_backoff = 0.1, stable = 600 }}")
        assert f"limit = {LIMIT}," in edited
        return edited

    made = Stack("held", tmp / "run", held_config(tmp, fatal_soon))
    with running_with_fake_ollama(made, env={"OLLAMAMAX_HEALTH_INTERVAL": "0.2"}):
        yield made


def health(stack: Stack) -> int | str:
    """The gateway's /health status code, or how the connection failed."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port("gateway"), timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        return f"failed: {exc!r}"
    finally:
        conn.close()


def gateway_pid(stack: Stack) -> int | None:
    infos = Supervisor(RunPaths(stack.run_dir).socket).all_info()
    pids = [i.pid for n, i in infos.items()
            if n.startswith("gateway.") and i.state == "RUNNING" and i.pid]
    return pids[0] if pids else None


def kill_until_fatal(stack: Stack) -> dict[str, object]:
    for _ in range(LIMIT + 1):
        pid = gateway_pid(stack)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        seen = stack.wait_for(
            lambda s, old=pid: any(x["name"] == "gateway" and (
                x["state"] == "fatal" or x["ready"] and x["pid"] not in (None, old))
                for x in s["services"]), timeout=60, what="gateway back or fatal")
        if any(x["name"] == "gateway" and x["state"] == "fatal" for x in seen["services"]):
            return seen
    raise AssertionError("the gateway never went fatal")


def test_a_fatal_gateway_is_refused_at_once_and_the_stack_is_failed(stack: Stack) -> None:
    assert health(stack) == 200
    seen = kill_until_fatal(stack)
    assert health(stack) == "refused"
    assert seen["stack"] == "failed" and seen["exit"] == 1, seen
    text = stack.cli("status")
    assert text.returncode == 1 and "failed" in text.stdout.splitlines()[0], text.stdout

    started = stack.cli("start", "gateway")
    assert started.returncode == 0, started.stdout + started.stderr
    assert health(stack) == 200
    assert stack.status()["stack"] == "up"


def test_a_stopped_gateway_is_refused_at_once_and_serves_when_started(stack: Stack) -> None:
    assert health(stack) == 200
    stopped = stack.cli("stop", "gateway")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert health(stack) == "refused"
    seen = stack.status()
    # Stopped on purpose: the stack is degraded, not failed.
    assert seen["stack"] == "degraded" and seen["exit"] == 1

    started = stack.cli("start", "gateway")
    assert started.returncode == 0, started.stdout + started.stderr
    assert health(stack) == 200


def test_a_kill_9_after_a_start_again_is_still_refused_by_nobody(stack: Stack) -> None:
    # The port reopened by `start` is held again: a crash waits in the backlog, never refused.
    pid = gateway_pid(stack)
    assert pid is not None and health(stack) == 200
    os.kill(pid, signal.SIGKILL)
    conn = http.client.HTTPConnection("127.0.0.1", stack.port("gateway"), timeout=60)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    stack.wait_for(lambda s: any(x["name"] == "gateway" and x["ready"] for x in s["services"]),
                   what="gateway ready again")
