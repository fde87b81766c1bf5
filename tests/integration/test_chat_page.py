"""The chat page in a real browser (Debian's chromium): a conversation that survives the gateway.

The stack runs as a user runs it (`ollamamax up -d`, the project's registry at a free offset,
held sockets and the watcher) in front of the stand-in Ollama. The page is opened on the
gateway; the gateway's workers are killed with SIGKILL and the gateway is stopped (its port
then refuses); the next message is answered over the hub, and the page says so; started
again, the gateway gets the page back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ollamamax_stack.registry import load_registry
from tests.integration.services_procs import fake_nodes, running_stack, wait_until
from tests.portbase import free_offset
from tests.render_project import ROOT

pytestmark = pytest.mark.timeout(300)
REGISTRY = ROOT / "config" / "ports.toml"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_ENV = "OLLAMAMAX_SCREENSHOT"  # where to keep the page's picture (docs/images/...)
WAIT_MS = 30_000


@dataclass
class UpStack:
    base: list[str]
    offset: int

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], capture_output=True, text=True,
                              check=False, timeout=120, cwd=ROOT)

    def port(self, service: str) -> int:
        return load_registry(REGISTRY, offset=self.offset).services[service].primary_port

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def ws(self, service: str) -> str:
        return f"ws://127.0.0.1:{self.port(service)}/chat"

    def worker_pids(self, service: str) -> list[int]:
        status = json.loads(self.cli("status", "--json").stdout)
        entry = next(s for s in status["services"] if s["name"] == service)
        return [w["pid"] for w in entry["workers"] if w["pid"]]


@pytest.fixture
def stack() -> Iterator[UpStack]:
    base_registry = load_registry(REGISTRY)
    offset = free_offset([p for s in base_registry.services.values()
                          for p in s.port_map.values()])
    run_dir = Path(tempfile.mkdtemp(prefix="ollamamax-page-"))
    base = [sys.executable, "-m", "ollamamax_stack", "--config", str(REGISTRY), "--offset",
            str(offset), "--run-dir", str(run_dir)]
    running = UpStack(base, offset)
    ollama = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port",
                               str(running.port("ollama")), "--token-delay", "0.01"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = running.cli("up", "-d")
        assert started.returncode == 0, started.stdout + started.stderr
        yield running
    finally:
        running.cli("down", "--timeout", "5")
        ollama.terminate()
        ollama.wait(10)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/system-deps (Debian package chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def connected_to(page: Any, ws_url: str) -> None:
    """Wait until the page says it is connected to `ws_url`."""
    page.locator(f'#connection[data-endpoint="{ws_url}"]').wait_for(timeout=WAIT_MS)


def ask(page: Any, text: str) -> dict[str, str]:
    """Send `text`; the finished answer's text, endpoint and node, and what the page says."""
    done = page.locator(".turn.assistant.finished")
    before = done.count()
    page.locator("#model option").first.wait_for(state="attached", timeout=WAIT_MS)
    page.fill("#prompt", text)
    page.click("#send")
    done.nth(before).wait_for(timeout=WAIT_MS)
    answer = done.nth(before)
    return {"text": answer.locator(".text").inner_text(),
            "meta": answer.locator(".meta").inner_text(),
            "endpoint": answer.get_attribute("data-endpoint") or "",
            "node": answer.get_attribute("data-node") or ""}


def notices(page: Any) -> list[str]:
    return list(page.locator("#notices li").all_inner_texts())


def wait_notice(page: Any, *parts: str) -> str:
    """The first notice that holds every one of `parts` (waited for)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        for text in notices(page):
            if all(p in text for p in parts):
                return text
        page.wait_for_timeout(100)
    raise AssertionError(f"no notice with {parts}; the page says: {notices(page)}")


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def chats_received(url: str) -> float:
    """The `chat` messages a front end's /chat took, from its own /metrics."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith('ollamamax_ws_messages_received_total{type="chat"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_conversation_moves_to_the_hub_when_the_gateway_dies_and_back(
        stack: UpStack, browser: Any, tmp_path: Path) -> None:
    gateway, hub = stack.ws("gateway"), stack.ws("hub")
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(stack.url("gateway") + "/")
    connected_to(page, gateway)
    first = ask(page, "hello gateway")
    assert "You said: hello gateway" in first["text"], first
    assert first["endpoint"] == gateway and f"{gateway} (gateway)" in first["meta"], first
    assert first["node"] and f"by node {first['node']}" in first["meta"], first

    for pid in stack.worker_pids("gateway"):
        os.kill(pid, signal.SIGKILL)
    dropped = wait_notice(page, f"the connection to {gateway} dropped", f"moving to {hub}")
    # The watcher restarts a killed worker; stopped, the gateway's port refuses outright.
    stopped = stack.cli("stop", "gateway")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert refuses(stack.port("gateway"))
    connected_to(page, hub)

    before = chats_received(stack.url("hub"))
    second = ask(page, "hello hub")
    assert "You said: hello hub" in second["text"], second
    assert second["endpoint"] == hub and f"answered over {hub} (hub)" in second["meta"], second
    assert chats_received(stack.url("hub")) == before + 1  # the hub says so too
    assert f"connected to {hub} (hub)" in page.locator("#connection").inner_text()

    # While the gateway is down, the hub serves the page itself, models from its `nodes`.
    spare = browser.new_page()
    spare.goto(stack.url("hub") + "/")
    connected_to(spare, hub)
    assert "You said: from the hub's page" in ask(spare, "from the hub's page")["text"]
    spare.close()

    started = stack.cli("start", "gateway")
    assert started.returncode == 0, started.stdout + started.stderr
    back = wait_notice(page, f"{gateway} is back", f"moved from {hub}")
    connected_to(page, gateway)
    third = ask(page, "hello again")
    assert "You said: hello again" in third["text"], third
    assert third["endpoint"] == gateway, third
    page.screenshot(path=os.environ.get(SCREENSHOT_ENV) or str(tmp_path / "chat-page.png"),
                    full_page=True)
    print(f"\n{dropped}\n{back}")


def test_the_key_field_shows_when_auth_is_on_and_its_key_opens_the_chat(
        tmp_path: Path, browser: Any) -> None:
    nodes = fake_nodes(tmp_path, [("a", "llama3.2", ["--token-delay", "0.05"])])
    with running_stack(tmp_path, nodes, ["inference", "gateway", "hub"],
                       env={"OLLAMAMAX_API_KEYS": "page-key"}) as running:
        page = browser.new_page()
        page.goto(running.url("gateway") + "/")
        page.locator("#key-field").wait_for(state="visible", timeout=WAIT_MS)
        wait_notice(page, running.ws("gateway"), "did not answer")  # no key: refused
        page.fill("#key", "page-key")
        page.dispatch_event("#key", "change")
        connected_to(page, running.ws("gateway"))
        answer = ask(page, "with a key")
        assert "You said: with a key" in answer["text"], answer
        assert page.locator("#model").input_value() == "llama3.2:latest"

        # Stop: a long answer (one word per 50 ms) is cut after its first words.
        page.fill("#prompt", " ".join(["word"] * 400))
        page.click("#send")
        streaming = page.locator(".turn.assistant").last
        streaming.locator(".text", has_text="Hello").wait_for(timeout=WAIT_MS)
        page.click("#stop")
        page.locator(".turn.assistant.finished").nth(1).wait_for(timeout=WAIT_MS)
        assert streaming.locator(".meta").inner_text().startswith("stopped"), \
            streaming.inner_text()
        assert streaming.locator(".text").inner_text().count("word") < 400
        wait_until(lambda: any(c.get("cancelled") for c in nodes[0].calls()),
                   what="the node to see the answer cancelled")
