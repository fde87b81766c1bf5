"""`ollamamax ports check` as a user runs it: exit codes, formats, fixture trees, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "ports.toml"
CONFLICTS = ROOT / "tests" / "fixtures" / "conflicts"
TREE_FILES = ["src/server.js", "api-server/server.js", ".env", "docker-compose.custom.yml"]


def ollamamax(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ollamamax_stack", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def check_json(*args: str, cwd: Path = ROOT) -> tuple[int, dict[str, object]]:
    result = ollamamax(*args, "--format", "json", cwd=cwd)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def shown(path: Path, cwd: Path = ROOT) -> str:
    """A path as findings name it: relative to the directory the check ran in."""
    return os.path.relpath(path, cwd)


def findings(report: dict[str, object]) -> list[dict[str, object]]:
    items = report["findings"]
    assert isinstance(items, list)
    return items


def test_the_project_agrees_with_its_registry() -> None:
    result = ollamamax("ports", "check", "--no-host")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ports check: ok" in result.stdout


def test_historical_conflicts_are_each_found_with_file_and_line() -> None:
    code, report = check_json("--config", str(REGISTRY), "ports", "check", "--no-host",
                              *TREE_FILES, cwd=CONFLICTS / "before")
    assert code == 1 and report["ok"] is False
    got = {(f["code"], f["service"], f["port"], f["file"], f["line"]) for f in findings(report)}
    # The port document's .env: its bare PORT is the gateway's (config_files names `.env`).
    assert ("drift", "gateway", 13000, ".env", 2) in got
    # 1. 13000 given to both Node servers.
    assert ("drift", "gateway", 13000, "src/server.js", 4) in got
    assert ("drift", "hub", 13000, "api-server/server.js", 5) in got
    assert ("conflict", "hub", 13000, "api-server/server.js", 5) in got
    # 2. 11434 given to both the Go backend (GO_API_PORT) and Ollama (OLLAMA_NODES) in .env:
    # the Go backend binds Ollama's port, a collision.
    assert ("drift", "inference", 11434, ".env", 4) in got
    assert ("collision", "ollama", 11434, ".env", 4) in got
    # 3. 13000 also given to Grafana in a custom compose file.
    assert ("drift", "grafana", 13000, "docker-compose.custom.yml", 13) in got
    assert ("conflict", "grafana", 13000, "docker-compose.custom.yml", 13) in got
    messages = [str(f["message"]) for f in findings(report)
                if f["code"] in ("conflict", "collision")]
    assert any("gateway" in m and "hub" in m for m in messages)
    assert any("ollama" in m and "inference" in m for m in messages)
    assert any("grafana" in m and "gateway" in m for m in messages)


def test_the_resolved_tree_is_clean() -> None:
    result = ollamamax("--config", str(REGISTRY), "ports", "check", "--no-host", *TREE_FILES,
                       cwd=CONFLICTS / "after")
    assert result.returncode == 0, result.stdout
    assert "ports check: ok" in result.stdout


def test_text_and_github_formats_name_file_and_line() -> None:
    text = ollamamax("--config", str(REGISTRY), "ports", "check", "--no-host", ".env",
                     cwd=CONFLICTS / "before")
    assert text.returncode == 1
    assert any(line.startswith(".env:4 error drift inference") for line in
               text.stdout.splitlines()), text.stdout
    github = ollamamax("--config", str(REGISTRY), "ports", "check", "--no-host", ".env",
                       "--format", "github", cwd=CONFLICTS / "before")
    assert github.returncode == 1
    lines = github.stdout.splitlines()
    assert "::error file=.env,line=4,title=drift::inference (api) has port 8080" in "\n".join(lines)
    assert all(line.startswith(("::error ", "::warning ")) for line in lines)


def test_json_shape_is_exactly_the_contract() -> None:
    code, report = check_json("--config", str(REGISTRY), "ports", "check", "--no-host", ".env",
                              cwd=CONFLICTS / "before")
    assert set(report) == {"ok", "findings"}
    for item in findings(report):
        assert set(item) == {"level", "code", "message", "service", "port", "file", "line"}


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    # A port of no service in a file the registry names is a warning; elsewhere it is nothing.
    registry = tmp_path / "ports.toml"
    registry.write_text('[stack]\ndrift_files = ["notes.env"]\n'
                        '[services.api]\nport = 13100\nexternal = true\n')
    (tmp_path / "notes.env").write_text("STATUS_URL=http://localhost:4999/status\n")
    (tmp_path / "other.env").write_text("STATUS_URL=http://localhost:4999/status\n")
    code, report = check_json("--config", str(registry), "ports", "check", "--no-host",
                              "other.env", cwd=tmp_path)
    assert code == 0 and report["ok"] is True
    assert [(f["code"], f["port"], f["file"], f["line"]) for f in findings(report)] == [
        ("unregistered", 4999, "notes.env", 1)]
    strict, _ = check_json("--config", str(registry), "ports", "check", "--no-host",
                           "--strict", cwd=tmp_path)
    assert strict == 1


def test_a_check_that_read_no_file_says_so_and_fails_strictly(tmp_path: Path) -> None:
    registry = tmp_path / "ports.toml"
    registry.write_text('[stack]\ndrift_files = []\n'
                        '[services.api]\nport = 13100\nexternal = true\n')
    plain = ollamamax("--config", str(registry), "ports", "check", "--no-host", cwd=tmp_path)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "warning nothing-checked" in plain.stdout and "0 files read" in plain.stdout
    assert "ok" not in plain.stdout.split()
    code, report = check_json("--config", str(registry), "ports", "check", "--no-host",
                              "--strict", cwd=tmp_path)
    assert code == 1 and report["ok"] is False
    assert [f["code"] for f in findings(report)] == ["nothing-checked"]
    # One file read is a check: no warning.
    (tmp_path / ".env").write_text("API_PORT=13100\n")
    code, report = check_json("--config", str(registry), "ports", "check", "--no-host",
                              "--strict", ".env", cwd=tmp_path)
    assert code == 0 and findings(report) == []


def test_offset_compares_against_shifted_ports(tmp_path: Path) -> None:
    env = tmp_path / "offset.env"
    env.write_text("API_PORT=14100\nGO_API_PORT=9080\n")
    code, report = check_json("--offset", "1000", "ports", "check", "--no-host", str(env))
    own = [f for f in findings(report) if f["file"] == shown(env)]
    assert own == []
    code, report = check_json("ports", "check", "--no-host", str(env))
    assert code == 1
    assert {f["service"] for f in findings(report) if f["code"] == "drift"} == {"gateway",
                                                                               "inference"}


@pytest.mark.parametrize(("name", "content", "code", "line"), [
    ("missing.yml", None, "file-missing", None),
    ("binary.env", b"PORT=\xff\xfe13100\n", "file-unreadable", None),
    ("broken.yml", "services:\n  api:\n    ports: [\"13100:13100\"\n  web: {\n", "file-unparsable",
     None),
    ("compose.yaml", "services:\n  api:\n    image: x\n  ports: [\n", "file-unparsable", None),
    ("nginx.conf", "server {\n  listen 13100;\n", "file-unparsable", None),
])
def test_bad_drift_files_are_findings_not_tracebacks(tmp_path: Path, name: str,
                                                      content: object, code: str,
                                                      line: int | None) -> None:
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    status, report = check_json("ports", "check", "--no-host", str(path))
    assert status == 1
    mine = [f for f in findings(report) if f["file"] == shown(path)]
    assert [f["code"] for f in mine] == [code], mine
    if line is not None:
        assert mine[0]["line"] == line
    if code == "file-unparsable" and name.endswith(".yml"):
        assert isinstance(mine[0]["line"], int)


SERVICE = '[services.{name}]\nport = {port}\nexternal = true\n'
BAD_REGISTRIES = [
    ("malformed", "[services.api\nport = 1\n", [], "invalid TOML"),
    ("wrong type", '[services.api]\nport = "13100"\nexternal = true\n', [], "services.api.port"),
    ("port 0", SERVICE.format(name="api", port=0), [], "out of range"),
    ("port 70000", SERVICE.format(name="api", port=70000), [], "out of range"),
    ("duplicate", SERVICE.format(name="api", port=13100) + SERVICE.format(name="web",
                                                                          port=13100),
     [], "'api' and 'web'"),
    ("unknown dependency", SERVICE.format(name="api", port=13100) + 'depends_on = ["db"]\n', [],
     "unknown service 'db'"),
    ("cycle", SERVICE.format(name="a", port=13100) + 'depends_on = ["b"]\n'
     + SERVICE.format(name="b", port=13101) + 'depends_on = ["a"]\n', [], "cycle"),
    ("unknown profile", SERVICE.format(name="api", port=13100), ["--profile", "nope"],
     "unknown profile 'nope'"),
    ("offset below 1", SERVICE.format(name="api", port=13100), ["--offset", "-13100"],
     "--offset -13100"),
]


@pytest.mark.parametrize(("label", "toml", "options", "expected"), BAD_REGISTRIES,
                         ids=[case[0] for case in BAD_REGISTRIES])
def test_an_unusable_registry_is_one_line_and_exit_2(tmp_path: Path, label: str, toml: str,
                                                     options: list[str], expected: str) -> None:
    registry = tmp_path / "ports.toml"
    registry.write_text(toml)
    result = ollamamax("--config", str(registry), *options, "ports", "check", "--no-host",
                       cwd=tmp_path)
    assert result.returncode == 2, (label, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("ollamamax: error: ports.toml"), lines[0]
    assert expected in lines[0]


def test_bad_usage_exits_2() -> None:
    result = ollamamax("ports", "check", "--no-host", "--format", "xml")
    assert result.returncode == 2
    assert "--format 'xml'" in result.stderr
    who = ollamamax("ports", "who", "70000")
    assert who.returncode == 2 and "70000" in who.stderr
