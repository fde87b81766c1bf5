"""One-shot tasks (`kind = "task"`) on a fixture stack of real programs on real ports.

The `tasks` stack: migrate (a task) runs once db is ready; api waits for migrate to have
completed, db to be ready and cache only to have started. Its `broken` profile adds a seed
task that exits 3 and a web service that waits for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.base import write_files
from ollamamax_stack.render.targets import render
from tests.fixtures.stacks.harness import STACKS, Stack
from tests.system import missing_program

TASKS = STACKS / "tasks" / "ports.toml"


def _times(stack: Stack) -> dict[tuple[str, str], float]:
    return {(r["service"], r["event"]): r["t"] for r in stack.times()}


def _events(stack: Stack, service: str) -> list[dict[str, Any]]:
    done = stack.cli("events", "--json", "--no-follow", "--since", "1h")
    assert done.returncode == 0, done.stderr
    return [e for e in map(json.loads, done.stdout.splitlines()) if e["service"] == service]


def test_a_task_others_wait_for_runs_once_and_is_never_restarted(make_stack: Any) -> None:
    stack = make_stack("tasks")
    done = stack.cli("up", "-d")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "migrate   | completed: exit 0 after" in done.stdout

    status = stack.status()
    assert status["stack"] == "up" and status["exit"] == 0  # a completed task is no degradation
    migrate = stack.service("migrate")
    assert migrate["state"] == "completed" and migrate["pid"] is None and migrate["ports"] == {}
    times = _times(stack)
    assert times[("migrate", "start")] >= times[("db", "ready")]
    assert times[("api", "start")] >= times[("migrate", "end")]  # "completed"
    assert times[("api", "start")] < times[("cache", "ready")]  # "started": not waited for ready
    env = json.loads(subprocess.check_output(
        ["curl", "-s", f"http://127.0.0.1:{stack.port('api')}/env"]))["env"]
    assert "OLLAMAMAX_MIGRATE_URL" not in env  # a task without a port has no URL

    # The watcher reconciles every second: it leaves the exited task alone, as `status` says.
    time.sleep(2.5)
    assert [e["action"] for e in _events(stack, "migrate")] == ["start", "completed"]
    assert stack.service("migrate")["state"] == "completed"

    again = stack.cli("up", "-d")  # on a running stack a completed task is not run again
    assert again.returncode == 0, again.stderr
    assert [r["event"] for r in stack.times() if r["service"] == "migrate"] == ["start", "end"]
    rerun = stack.cli("restart", "migrate")  # ... unless asked to
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert [r["event"] for r in stack.times() if r["service"] == "migrate"] == [
        "start", "end", "start", "end"]
    assert stack.service("migrate")["state"] == "completed"

    down = stack.cli("down", "--timeout", "2")
    assert down.returncode == 0, down.stdout + down.stderr
    stack.assert_clean()


def test_a_failed_task_fails_up_with_its_exit_status_and_last_log_line(
        make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack("tasks")
    done = stack.cli("--profile", "broken", "up", "-d")
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ollamamax: error:")]
    # The cause first, then what it stopped.
    assert errors[0].startswith("ollamamax: error: seed exited with status 3; its last log "
                                "line: seed["), errors
    assert errors[0].endswith(']: ERROR: relation "users" already exists'), errors
    assert "seed | seed[" in done.stderr and "applying 3 migrations" in done.stderr
    assert ("web", "start") not in _times(stack)  # it waited for seed, which never completed
    stack.assert_clean()


def test_a_completed_condition_on_a_service_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "ports.toml"
    config.write_text(TASKS.read_text().replace(
        'depends_on = { migrate = "completed", db = "ready"',
        'depends_on = { migrate = "completed", db = "completed"'))
    done = subprocess.run([sys.executable, "-m", "ollamamax_stack", "--config", str(config),
                           "ports", "list"], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "services.api.depends_on.db" in done.stderr and "not a task" in done.stderr
    assert "Traceback" not in done.stderr


def _rendered(tmp_path: Path, target: str) -> Path:
    out = tmp_path / target
    write_files(render(target, load_registry(TASKS), None), out)
    return out


def test_tasks_render_as_systemd_oneshot_units_that_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing_program("systemd-analyze", "systemd")
    assert analyze is not None
    out = _rendered(tmp_path, "systemd")
    migrate = (out / "tasks-migrate.service").read_text()
    assert "Type=oneshot" in migrate and "RemainAfterExit=yes" in migrate
    assert "Restart=no" in migrate and "Type=notify" not in migrate
    api = (out / "tasks-api.service").read_text()
    assert "Requires=tasks-migrate.service tasks-db.service tasks-cache.service" in api
    # After= a oneshot waits for its exit; "started" (cache) is pulled in, not waited for.
    assert "After=tasks-migrate.service tasks-db.service network.target" in api
    verify = subprocess.run([analyze, "verify", "--man=no", *sorted(p.name for p in
                                                                   out.iterdir())],
                            cwd=out, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr


def test_tasks_render_as_compose_completed_conditions_that_docker_compose_accepts(
        tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        missing_program("docker-compose", "docker-compose")
    assert compose is not None
    import yaml

    out = _rendered(tmp_path, "compose")
    document = yaml.safe_load((out / "docker-compose.yml").read_text())
    assert document["services"]["api"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "db": {"condition": "service_healthy"},
        "cache": {"condition": "service_started"}}
    migrate = document["services"]["migrate"]
    assert migrate["restart"] == "no" and "healthcheck" not in migrate and "ports" not in migrate
    checked = subprocess.run([compose, "-f", str(out / "docker-compose.yml"), "config", "-q"],
                             cwd=out, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("target", ["k8s"])
def test_tasks_render_as_kubernetes_jobs_that_validate(tmp_path: Path, target: str) -> None:
    import kubernetes_validate
    import yaml

    out = _rendered(tmp_path, target)
    docs = list(yaml.safe_load_all((out / "migrate.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Job"]
    assert docs[0]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
