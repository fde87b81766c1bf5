"""`render alerts` and `render grafana` against real Prometheus: promtool, and a live stack.

promtool checks the rendered rules and runs their unit tests (tests/fixtures/alerts). Then
Prometheus, configured as the `full` profile configures it (dependents/prometheus.py), scrapes
the stack's own services: it loads the rules, every dashboard query reads series the services
really export, and an Ollama node going down raises the node and model alerts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ollamamax_stack.dependents.prometheus import prometheus_argv, write_config
from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.alerts import render_alerts
from ollamamax_stack.render.grafana import dashboard, render_grafana
from tests.integration.services_procs import (
    REGISTRY,
    Stack,
    fake_nodes,
    http,
    running_stack,
    wait_until,
)
from tests.system import missing_program

pytestmark = pytest.mark.timeout(240)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"
ALERTS = {"OllamamaxServiceDown", "OllamamaxRestartLoop", "OllamamaxErrorRatio",
          "OllamamaxNodeDown", "OllamamaxNoHealthyNodeForModel"}
FRONT_ENDS = ["gateway", "hub", "fallback"]


def program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing_program(name, "prometheus")
        raise AssertionError("unreachable")
    return found


def test_the_rendered_rules_pass_promtool_check_and_their_unit_tests(tmp_path: Path) -> None:
    promtool = program("promtool")
    rules = render_alerts(load_registry(REGISTRY))
    (tmp_path / "alerts.yml").write_text(rules["alerts.yml"])
    shutil.copy(FIXTURES / "alerts.test.yml", tmp_path)
    checked = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=tmp_path,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "5 rules found" in checked.stdout, checked.stdout
    tested = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_grafana_provisioning_has_a_datasource_a_provider_and_a_row_per_service() -> None:
    registry = load_registry(REGISTRY, offset=7)
    files = render_grafana(registry)
    assert set(files) == {"datasources/ollamamax.yaml", "dashboards/ollamamax.yaml",
                          "dashboards/ollamamax.json"}
    assert "url: http://127.0.0.1:9097" in files["datasources/ollamamax.yaml"]
    board = json.loads(files["dashboards/ollamamax.json"])
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [*FRONT_ENDS, "inference"]
    titles = {p["title"] for p in board["panels"] if p["type"] != "row"}
    assert titles == {"up", "requests/s", "latency p50 / p99", "errors/s (5xx)",
                      "in flight per node", "restarts (10m)"}


def test_the_committed_dashboards_and_rules_are_current() -> None:
    registry = load_registry(REGISTRY, profile="full")
    deploy = REGISTRY.parents[1] / "deploy"
    for name, text in render_grafana(registry).items():
        assert (deploy / "grafana" / name).read_text() == text, (
            f"deploy/grafana/{name} is stale: ollamamax --profile full render grafana "
            "--out deploy/grafana")
    assert (deploy / "alerts.yml").read_text() == render_alerts(registry)["alerts.yml"], (
        "deploy/alerts.yml is stale: ollamamax --profile full render alerts --out deploy")


def query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def api(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=10) as reply:
        data: dict[str, Any] = json.loads(reply.read())["data"]
        return data


@pytest.fixture
def monitored(tmp_path: Path) -> Iterator[tuple[Stack, int, Any]]:
    """The stack's own services beside a real Prometheus configured as `full` runs it."""
    prometheus = program("prometheus")
    nodes = fake_nodes(tmp_path, [("a", "llama3.2", [])])
    with running_stack(tmp_path, nodes, ["inference", *FRONT_ENDS]) as stack:
        registry = load_registry(REGISTRY, offset=stack.offset)
        port = registry.services["prometheus"].primary_port
        config = write_config(registry, tmp_path / "prometheus")
        # Rules evaluated every second: a pending alert shows within the test's patience.
        config.write_text(config.read_text().replace("evaluation_interval: 15s",
                                                      "evaluation_interval: 1s"))
        proc = subprocess.Popen(prometheus_argv(Path(prometheus), config,
                                                tmp_path / "prometheus" / "data", "127.0.0.1",
                                                port),
                                stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "prometheus.log", "wb"))
        try:
            yield stack, port, nodes[0]
        finally:
            proc.terminate()
            proc.wait(30)


def test_prometheus_loads_the_rules_and_the_dashboard_reads_real_series(
        monitored: tuple[Stack, int, Any]) -> None:
    stack, port, node = monitored
    status, _ = http("POST", stack.url("gateway") + "/v1/chat/completions",
                     {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200

    def targets_up() -> bool:
        try:
            active = api(port, "targets")["activeTargets"]
        except OSError:
            return False
        return len(active) == 4 and all(t["health"] == "up" for t in active)

    wait_until(targets_up, timeout=60, what="Prometheus to scrape the four services")
    rules = api(port, "rules")["groups"]
    assert [g["name"] for g in rules] == ["ollamamax"]
    assert {r["name"] for r in rules[0]["rules"]} == ALERTS
    assert all(r["health"] == "ok" for r in rules[0]["rules"]), rules

    registry = load_registry(REGISTRY, offset=stack.offset)
    board = dashboard(registry)
    expressions = [(panel["title"], target["expr"]) for panel in board["panels"]
                   if panel["type"] != "row" for target in panel["targets"]]
    # A 5xx needs a failure to exist; every other query has series the services export.
    wanted = [(t, e) for t, e in expressions if not t.startswith("errors")]
    wait_until(lambda: all(query(port, e) for _, e in wanted), timeout=60,
               what="every dashboard query to return series")
    for _, expr in expressions:
        query(port, expr)  # valid PromQL, errors included
    healthy = query(port, 'ollamamax_model_healthy_nodes{service="inference"}')
    assert [(s["metric"]["model"], s["value"][1]) for s in healthy] == [("llama3.2:latest", "1")]

    node.kill()  # the only node: the node and the model it served have no healthy node

    def pending() -> set[str]:
        return {a["labels"]["alertname"] for a in api(port, "alerts")["alerts"]}

    wait_until(lambda: {"OllamamaxNodeDown", "OllamamaxNoHealthyNodeForModel"} <= pending(),
               timeout=60, what="the node and model alerts")
