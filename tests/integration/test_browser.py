"""A real browser (Debian's chromium, driven by Playwright) on a hostile page and on a trusted one.

The page tries what issue 8 found open: a `text/plain` POST to `/api/v1/nodes` (no CORS
preflight), a read of `/v1/models`, and a WebSocket to `/chat`. From a foreign origin all
are refused, and the server side confirms that no node was added. From an origin in the
services' `cors` list the reads and the chat work.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.services_procs import (
    REGISTRY,
    ROOT,
    Proc,
    Stack,
    fake_nodes,
    http,
    running_stack,
    spawn,
    wait_http,
)
from tests.portbase import free_port

pytestmark = pytest.mark.timeout(180)
CHROMIUM = "/usr/bin/chromium"

PAGE = """<!doctype html><meta charset="utf-8"><title>not the stack</title>
<script>
async function attack(gateway, inference) {
  const out = {};
  try {
    const r = await fetch(inference + "/api/v1/nodes", {method: "POST",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({url: "http://127.0.0.1:9"})});
    out.post = "status " + r.status;
  } catch (e) { out.post = "refused"; }
  try {
    const r = await fetch(gateway + "/v1/models");
    out.models = "status " + r.status + " " + (await r.json()).data.map(m => m.id).join(",");
  } catch (e) { out.models = "refused"; }
  out.ws = await new Promise(done => {
    const ws = new WebSocket(gateway.replace("http://", "ws://") + "/chat");
    ws.onmessage = m => { done("message " + JSON.parse(m.data).type); ws.close(); };
    ws.onerror = () => done("refused");
  });
  return out;
}
</script>
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The same page on a foreign origin and on a trusted one (both plain http.server)."""
    root = tmp_path_factory.mktemp("pages")
    (root / "page.html").write_text(PAGE)
    procs: list[Proc] = []
    urls = []
    try:
        for name, host in (("foreign", "127.0.0.1"), ("trusted", "localhost")):
            port = free_port()
            proc = spawn(f"{name} page", [sys.executable, "-m", "http.server", str(port),
                                          "--bind", "127.0.0.1", "--directory", str(root)],
                         root / f"{name}.log")
            procs.append(proc)
            wait_http(proc, f"http://127.0.0.1:{port}/page.html")
            urls.append(f"http://{host}:{port}")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory,
          pages: tuple[str, str]) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("browser")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    with running_stack(tmp, nodes, ["inference", "gateway"], env={"OLLAMAMAX_ACCESS_LOG": "1"},
                       registry=registry_trusting(tmp, pages[1])) as running:
        yield running


def registry_trusting(tmp: Path, origin: str) -> Path:
    """The project's registry with `origin` added to every `cors` list."""
    text = REGISTRY.read_text().replace('root = ".."', f'root = "{ROOT}"')
    text = re.sub(r'^cors = \[', f'cors = ["{origin}", ', text, flags=re.MULTILINE)
    path = tmp / "ports.toml"
    path.write_text(text)
    return path


def run_page(origin: str, stack: Stack) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("chromium is not installed: run scripts/system-deps (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{origin}/page.html")
            result: dict[str, Any] = page.evaluate(
                f"attack(decodeURIComponent('{quote(stack.url('gateway'))}'), "
                f"decodeURIComponent('{quote(stack.url('inference'))}'))")
        finally:
            browser.close()
    return result


def node_urls(stack: Stack) -> list[str]:
    status, body = http("GET", stack.url("inference") + "/api/v1/nodes")
    assert status == 200, body
    return [n["url"] for n in body["nodes"]]


def test_a_foreign_page_is_refused_everything(stack: Stack, pages: tuple[str, str]) -> None:
    before = node_urls(stack)
    result = run_page(pages[0], stack)
    assert result == {"post": "refused", "models": "refused", "ws": "refused"}, result
    assert node_urls(stack) == before
    # The services saw the requests and refused them (the browser alone proves nothing).
    assert '"POST /api/v1/nodes HTTP/1.1" 403' in stack.procs["inference"].log.read_text()
    gateway_log = stack.procs["gateway"].log.read_text()
    assert '"GET /v1/models HTTP/1.1" 403' in gateway_log
    assert '"GET /chat HTTP/1.1" 403' in gateway_log


def test_a_page_from_a_cors_origin_works(stack: Stack, pages: tuple[str, str]) -> None:
    before = node_urls(stack)
    result = run_page(pages[1], stack)
    # It may read and chat; a text/plain POST is still no JSON, and registration is off.
    assert result == {"post": "status 415", "models": "status 200 llama3.2:latest",
                      "ws": "message nodes"}, result
    assert node_urls(stack) == before


def test_docs_render_the_gateways_operations_offline(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            requested: list[str] = []
            # Offline: every request the page makes goes to the gateway itself.
            page.on("request", lambda request: requested.append(request.url))
            page.goto(stack.url("gateway") + "/docs")
            operation = page.locator(".opblock-summary-path", has_text="/v1/chat/completions")
            try:
                operation.first.wait_for(timeout=30_000)
            except Exception:
                raise AssertionError("no operation rendered; the page says: "
                                     + page.locator("body").inner_text()[:400]) from None
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            stamp = page.locator(".info .version-stamp").first.inner_text()
        finally:
            browser.close()
    assert {"/v1/chat/completions", "/v1/models", "/v1/embeddings"} <= {
        p.strip().replace("\u200b", "") for p in paths}, paths
    assert "OAS 3.1" in stamp, stamp
    assert requested and all(url.startswith(stack.url("gateway")) for url in requested), requested
