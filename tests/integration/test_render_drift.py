"""Closing the loop: rendered files pass `ports check`, and go stale when the registry moves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.render_project import ROOT, project_copy

OLLAMAMAX = [sys.executable, "-m", "ollamamax_stack"]
# Where each rendered file lives in the project, as in config/ports.toml's drift_files.
PLACED = {
    ".env.example": ("env", None),
    "deploy/docker-compose.yml": ("compose", "deploy"),
    "deploy/prometheus.yml": ("prometheus", "deploy"),
    "frontend/endpoints.js": ("frontend", "frontend"),
    "frontend/endpoints.json": ("frontend", "frontend"),
}


def ollamamax(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OLLAMAMAX, "--config", str(config), "--profile", "full", *args],
                          capture_output=True, text=True, check=False, cwd=config.parent.parent)


def render_in_place(config: Path) -> None:
    """Render every drift file of the project into the place the drift list names."""
    root = config.parent.parent
    for target, directory in set(PLACED.values()):
        if directory is None:
            result = ollamamax(config, "render", target)
            (root / ".env.example").write_text(result.stdout)
        else:
            result = ollamamax(config, "render", target, "--out", str(root / directory))
        assert result.returncode == 0, result.stderr


def findings(config: Path) -> list[dict[str, object]]:
    result = ollamamax(config, "ports", "check", "--no-host", "--format", "json")
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1), result.stderr
    return list(report["findings"])


def test_the_projects_rendered_files_are_current_and_pass_the_check(tmp_path: Path) -> None:
    config = project_copy(tmp_path)
    render_in_place(config)
    for name in PLACED:
        assert (ROOT / name).read_text() == (tmp_path / name).read_text(), (
            f"{name} is stale: re-render it (see test_render_drift.PLACED)")
    assert findings(ROOT / "config" / "ports.toml") == []


def test_moving_a_port_flags_every_rendered_file_until_it_is_rendered_again(
        tmp_path: Path) -> None:
    drift = "drift_files = [\n" + "".join(f'  "{n}",\n' for n in PLACED) + "]"
    config = project_copy(tmp_path)
    text = config.read_text()
    start = text.index("drift_files = [")
    config.write_text(text[:start] + drift + text[text.index("]", start) + 1:])
    render_in_place(config)
    assert findings(config) == []

    config.write_text(config.read_text().replace("port = 13101", "port = 13111"))
    stale = {str(f["file"]) for f in findings(config)}
    assert {str(tmp_path / n) for n in PLACED} <= {str(tmp_path / s) for s in stale}

    render_in_place(config)
    assert findings(config) == []
