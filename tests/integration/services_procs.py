"""Start fake Ollama nodes and the stack's services as real processes; stop them by pid."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.portbase import free_offset, free_port

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "ports.toml"

def registry_ports() -> list[int]:
    """Every port of the registry: an offset must keep them all valid and free."""
    from ollamamax_stack.registry import load_registry

    registry = load_registry(REGISTRY)
    return [p for s in registry.services.values() for p in s.port_map.values()]

FAST = {"OLLAMAMAX_HEALTH_INTERVAL": "0.2", "OLLAMAMAX_HEALTH_TIMEOUT": "1",
        "OLLAMAMAX_DRAIN_TIMEOUT": "5"}


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, Any]:
    """A plain HTTP call for test set-up (the clients under test are the real ones)."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**sent, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Proc:
    """A process we started, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        """Signal it by pid and wait; SIGKILL if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


def spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
          **kwargs: Any) -> Proc:
    """Start `argv` with its output in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                 **kwargs)
    return Proc(name, popen, log)


def wait_http(proc: Proc, url: str, timeout: float = 30, ok: tuple[int, ...] = (200,)) -> None:
    """Wait until `url` answers one of `ok`; fail with the log if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.tail()}")
        with contextlib.suppress(OSError):
            status, _ = http("GET", url, timeout=2)
            if status in ok:
                return
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} not ready at {url} after {timeout}s:\n{proc.tail()}")


def wait_until(predicate: Any, timeout: float = 15, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class FakeNode:
    """A fake Ollama process."""

    name: str
    port: int
    models: str
    args: list[str]
    log: Path
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeNode:
        argv = [sys.executable, "-m", "tests.fakes.ollama", "--port", str(self.port),
                "--name", self.name, "--models", self.models, *self.args]
        self.proc = spawn(f"fake {self.name}", argv, self.log)
        wait_http(self.proc, self.url + "/api/version")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL)

    def fail(self, mode: str, **extra: Any) -> None:
        status, body = http("POST", self.url + "/_fake/fail", {"mode": mode, **extra})
        assert status == 200, body

    def calls(self) -> list[dict[str, Any]]:
        status, body = http("GET", self.url + "/_fake/log")
        assert status == 200, body
        return list(body["calls"])


@dataclass
class Stack:
    """Services of one stack on a free offset."""

    offset: int
    run_dir: Path
    env: dict[str, str]
    procs: dict[str, Proc] = field(default_factory=dict)
    registry: Path = REGISTRY

    def url(self, service: str) -> str:
        """A service's base URL from the registry at this offset (`web`: inference's web port)."""
        from ollamamax_stack.registry import load_registry

        registry = load_registry(self.registry, offset=self.offset)
        if service == "web":
            return registry.url(registry.services["inference"], "web")
        return registry.url(registry.services[service])

    def ws(self, service: str) -> str:
        return self.url(service).replace("http://", "ws://") + "/chat"

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ollamamax_stack", "--config", str(self.registry),
                "--offset", str(self.offset), "--run-dir", str(self.run_dir), *args]

    def start(self, service: str, wait: bool = True) -> Proc:
        proc = spawn(service, self.argv("serve", service), self.run_dir / f"{service}.log",
                     self.env)
        self.procs[service] = proc
        if wait:
            wait_http(proc, self.url(service) + "/health/ready")
        return proc

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


def fake_nodes(tmp: Path, specs: list[tuple[str, str, list[str]]]) -> list[FakeNode]:
    """FakeNode objects (not started) on free ports: (name, models, extra args)."""
    return [FakeNode(name, free_port(), models, args, tmp / f"fake-{name}.log")
            for name, models, args in specs]


@contextlib.contextmanager
def running_stack(tmp: Path, nodes: list[FakeNode], services: list[str],
                  env: dict[str, str] | None = None,
                  registry: Path = REGISTRY) -> Iterator[Stack]:
    """Fakes started, then the services in order (each waited ready); all stopped after."""
    stack = Stack(free_offset(registry_ports()), tmp / "run",
                  {**FAST, "OLLAMA_NODES": ",".join(n.url for n in nodes), **(env or {})},
                  registry=registry)
    try:
        for node in nodes:
            node.start()
        for service in services:
            stack.start(service)
        yield stack
    finally:
        stack.stop_all()
        for node in nodes:
            if node.proc is not None:
                node.proc.stop()


def ws_chat_status(url: str, model: str = "llama3.2",
                   headers: dict[str, str] | None = None) -> int | None:
    """None when one chat over a WebSocket /chat completes, else the refusal's HTTP status."""
    import asyncio

    import websockets
    from websockets.exceptions import InvalidStatus

    async def run() -> int | None:
        try:
            async with websockets.connect(url, additional_headers=headers) as ws:
                assert json.loads(await ws.recv())["type"] == "nodes"
                await ws.send(json.dumps({"type": "chat", "id": 1, "model": model,
                                          "messages": [{"role": "user", "content": "hi"}]}))
                while json.loads(await ws.recv())["type"] != "done":
                    pass
                return None
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(run())
