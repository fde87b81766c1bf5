"""The socket holder as the supervisor sees it: wait until it answers; make it re-read."""

from __future__ import annotations

import time
from typing import Any

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.handoff.client import request
from ollamamax_stack.handoff.paths import holder_socket
from ollamamax_stack.handoff.paths import prepare as prepare_paths
from ollamamax_stack.handoff.slots import HOLDER_PROGRAM
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise.logs import tail
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.rpc import Supervisor, SupervisorFault

READY_TIMEOUT = 10.0


class HolderError(OllamamaxError):
    """The socket holder did not start, or cannot hold a port (exit 1)."""


def needed(registry: Registry) -> bool:
    """Whether the stack has services that take held sockets."""
    return any(s.held for s in registry.managed)


def running(client: Supervisor) -> bool:
    """Whether supervisord runs the holder now."""
    info = client.all_info().get(HOLDER_PROGRAM)
    return info is not None and info.running


def ask(registry: Registry, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """One question to the holder of this stack."""
    return request(holder_socket(registry.run_dir), message, timeout)


def wait_ready(registry: Registry, client: Supervisor, timeout: float = READY_TIMEOUT) -> None:
    """Start the holder if needed and wait until it answers; a clear error when it cannot."""
    if not needed(registry):
        return
    prepare_paths(registry.run_dir)
    try:
        client.start(HOLDER_PROGRAM)
    except SupervisorFault:
        pass  # already started (autostart) or starting
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = ask(registry, {"op": "list"}, timeout=2.0)
            if answer.get("problems"):
                raise HolderError(f"the socket holder cannot hold every port: "
                                  f"{answer['problems'][0]}")
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            said = [line.strip() for line in tail(RunPaths(registry.run_dir).log(HOLDER_PROGRAM), 3)
                    if line.strip()]
            raise HolderError(f"the socket holder did not answer on "
                              f"{holder_socket(registry.run_dir)} within {timeout:g}s"
                              + (f": {said[-1]}" if said else ""))
        time.sleep(0.02)


def park(registry: Registry, service: str, wait: bool = True) -> str | None:
    """Make the holder close a held service's ports while nobody serves it (fatal, stopped), so
    clients are refused at once; it binds them again when a process of it starts. None, or why
    it could not. `wait`: give its last process a moment to hang up."""
    message: dict[str, Any] = {"op": "park", "service": service}
    if not wait:
        message["wait"] = 0
    try:
        answer = ask(registry, message)
    except OSError as exc:
        return f"the socket holder does not answer ({exc})"
    return None if answer.get("ok") else str(answer.get("error"))


def park_stopped(registry: Registry, names: list[str]) -> dict[str, str]:
    """Park the held services among `names`, just stopped: nobody serves them now, so their
    ports refuse at once instead of queueing clients. The ones that stay open, and why."""
    problems = {}
    for name in names:
        service = registry.services.get(name)
        if service is not None and service.held:
            problem = park(registry, name)
            if problem is not None:
                problems[name] = problem
    return problems


def sync(registry: Registry) -> list[str]:
    """Make the holder bind the registry's ports as they are now; the ports it cannot hold."""
    answer = ask(registry, {"op": "sync"})
    return [str(p) for p in answer.get("problems", [])]
