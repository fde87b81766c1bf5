"""`ports check` in CI: SARIF for code scanning, `--fix`/`--diff`, `--exclude` and `[checks]`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "ports.toml"
CONFLICTS = ROOT / "tests" / "fixtures" / "conflicts"
SARIF_SCHEMA = ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
TREE_FILES = ["src/server.js", "api-server/server.js", ".env", "docker-compose.custom.yml"]


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "ollamamax_stack", "--config", str(REGISTRY),
                             "ports", "check", "--no-host", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def tree(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(CONFLICTS / "before", copy)
    return copy


def contents(root: Path) -> dict[str, str]:
    return {name: (root / name).read_text() for name in TREE_FILES}


def test_sarif_of_the_historic_conflicts_is_valid_and_points_at_lines() -> None:
    result = check(*TREE_FILES, "--format", "sarif", cwd=CONFLICTS / "before")
    assert result.returncode == 1
    log = json.loads(result.stdout)
    jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text()))
    run = log["runs"][0]
    rules = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert {"drift", "conflict"} <= rules
    places = {(r["ruleId"], r["level"],
               r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
               r["locations"][0]["physicalLocation"]["region"]["startLine"])
              for r in run["results"]}
    assert ("drift", "error", ".env", 4) in places
    assert ("conflict", "error", "docker-compose.custom.yml", 13) in places
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (
        (CONFLICTS / "before").resolve().as_uri() + "/")


def test_the_migration_guide_is_one_command(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    result = check("--fix", *TREE_FILES, cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for said in ("fixed src/server.js:4 13000 -> 13100 (gateway)",
                 "fixed api-server/server.js:5 13000 -> 13101 (hub)",
                 "fixed .env:4 11434 -> 8080 (inference)",
                 "fixed docker-compose.custom.yml:13 13000 -> 3001 (grafana)"):
        assert said in lines, result.stdout
    assert lines[-1].startswith("ports check: ok")
    after = contents(CONFLICTS / "after")
    now = contents(repo)
    for name in ("src/server.js", "api-server/server.js"):
        assert now[name] == after[name], name
    # The .env lines the check attributes are the document's (a bare PORT may mean nothing).
    assert {"API_PORT=13100", "GO_API_PORT=8080", "OLLAMA_NODES=http://localhost:11434"} <= set(
        now[".env"].splitlines())
    # The compose file: the ports of the document's resolution, its comments where they were.
    compose = now["docker-compose.custom.yml"]
    assert yaml.safe_load(compose) == yaml.safe_load(after["docker-compose.custom.yml"])
    assert '- "13100:13100"  # API server' in compose and '- "3001:3000"' in compose
    assert "# Monitoring" in compose
    # Idempotent: a second run finds nothing to change.
    again = check("--fix", *TREE_FILES, cwd=repo)
    assert again.returncode == 0 and "fixed" not in again.stdout, again.stdout
    assert contents(repo) == now


def test_diff_prints_the_change_and_writes_nothing(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    before = contents(repo)
    result = check("--diff", *TREE_FILES, cwd=repo)
    assert result.returncode == 1
    assert "--- a/.env\n+++ b/.env\n" in result.stdout
    assert "\n-GO_API_PORT=11434\n" in result.stdout and "\n+GO_API_PORT=8080\n" in result.stdout
    assert re.search(r"--fix would fix \d+ ports in 4 files", result.stderr), result.stderr
    assert contents(repo) == before
    # The diff applies as it is, and the result is the fixed tree.
    subprocess.run(["git", "apply", "-"], input=result.stdout, text=True, cwd=repo, check=True)
    assert check(*TREE_FILES, cwd=repo).returncode == 0
    clean = check("--diff", *TREE_FILES, cwd=repo)
    assert clean.returncode == 0 and clean.stdout == ""
    assert "nothing to fix" in clean.stderr


def test_fix_keeps_machine_output_clean(tmp_path: Path) -> None:
    repo = tree(tmp_path)
    result = check("--fix", "--format", "json", *TREE_FILES, cwd=repo)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"ok": True, "findings": []}
    assert "fixed .env:4 11434 -> 8080 (inference)" in result.stderr


def test_exclude_leaves_files_out() -> None:
    result = check("--format", "json", "--exclude", "*.yml", "--exclude", "src", *TREE_FILES,
                   cwd=CONFLICTS / "before")
    files = {f["file"] for f in json.loads(result.stdout)["findings"]}
    assert files == {".env", "api-server/server.js"}
    everything = check("--format", "json", "--exclude", "*", *TREE_FILES,
                       cwd=CONFLICTS / "before")
    assert everything.returncode == 0


def test_checks_table_of_the_registry(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "vendor").mkdir()
    (tmp_path / ".env").write_text("GATEWAY_PORT=13000\n")
    (tmp_path / "vendor" / ".env").write_text("GATEWAY_PORT=13001\n")
    (tmp_path / "config" / "ports.toml").write_text(
        '[stack]\nroot = ".."\n\n[checks]\ndrift_files = [".env", "vendor/.env"]\n'
        'exclude = ["vendor"]\n\n[services.gateway]\nport = 13100\nexternal = true\n'
        'env_keys = ["GATEWAY_PORT"]\n')
    result = subprocess.run([sys.executable, "-m", "ollamamax_stack", "ports", "check",
                             "--no-host"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stdout.startswith(".env:1 error drift gateway"), result.stdout
    assert "vendor" not in result.stdout


def test_exclude_applies_inside_a_walked_directory(tmp_path: Path) -> None:
    for name in ("app/.env", "app/legacy/.env"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("GO_API_PORT=11434\n")
    walked = check("--format", "json", "app", cwd=tmp_path)
    assert {f["file"] for f in json.loads(walked.stdout)["findings"]} == {
        "app/.env", "app/legacy/.env"}
    excluded = check("--format", "json", "--exclude", "app/legacy", "app", cwd=tmp_path)
    assert {f["file"] for f in json.loads(excluded.stdout)["findings"]} == {"app/.env"}


def test_registry_exclusions_shape_a_walk_but_not_a_named_file(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / ".env").write_text("GATEWAY_PORT=13000\n")
    (tmp_path / "config" / "ports.toml").write_text(
        '[stack]\nroot = ".."\n\n[checks]\nexclude = ["fixtures"]\n\n'
        '[services.gateway]\nport = 13100\nexternal = true\nenv_keys = ["GATEWAY_PORT"]\n')
    def own_check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ollamamax_stack", "ports", "check",
                               "--no-host", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)

    walked = own_check(".")
    assert walked.returncode == 0, walked.stdout
    named = own_check("fixtures/.env")
    assert named.returncode == 1
    assert named.stdout.startswith("fixtures/.env:1 error drift gateway"), named.stdout
