"""`ollamamax ports list`: what a user sees of the registry, shifted by --offset."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def ollamamax(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ollamamax_stack", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_list_json_follows_offset_and_profile() -> None:
    done = ollamamax("--offset", "100", "--profile", "full", "ports", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["services"]}
    assert rows["gateway"]["ports"] == {"main": 13200}
    assert rows["gateway"]["url"] == "http://127.0.0.1:13200"
    assert rows["inference"]["ports"] == {"api": 8180, "web": 8181}
    assert rows["ollama"]["managed"] is False and rows["ollama"]["optional"] is True
    assert rows["redis"]["active"] is True and rows["redis"]["profiles"] == ["full"]
    assert rows["prometheus"]["depends_on"] == ["gateway", "hub", "fallback", "inference"]


def test_list_table_shows_every_service() -> None:
    done = ollamamax("ports", "list")
    assert done.returncode == 0, done.stderr
    for needle in ("gateway", "13100", "api=8080, web=8081", "external (optional)",
                   "http://127.0.0.1:13102", "profile default"):
        assert needle in done.stdout


def test_list_with_a_bad_registry_is_one_line_exit_2(tmp_path: object) -> None:
    done = ollamamax("--config", "/nonexistent/ports.toml", "ports", "list")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot read the registry" in done.stderr
