"""The repository's pre-commit hook, run by the real `pre-commit try-repo` on a fresh project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
GIT = ["git", "-c", "user.name=ollamamax tests", "-c", "user.email=tests@localhost",
       "-c", "commit.gpgsign=false"]
REGISTRY = """\
[stack]
root = ".."
drift_files = [".env"]

[services.gateway]
port = 13100
external = true
env_keys = ["GATEWAY_PORT"]
"""


def snapshot(dest: Path) -> Path:
    """This working tree (tracked and new files, as they are now) committed in a fresh repo."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    commit(dest)
    return dest


def commit(repo: Path) -> None:
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "snapshot"], cwd=repo, check=True)


@pytest.mark.timeout(900)
def test_try_repo_fails_on_drift_and_passes_once_fixed(tmp_path: Path) -> None:
    hooks = snapshot(tmp_path / "ollamamax-stack")
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "config" / "ports.toml").write_text(REGISTRY)
    (project / ".env").write_text("# the gateway\nGATEWAY_PORT=13000\n")
    commit(project)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    env.pop("OLLAMAMAX_CONFIG", None)

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PRE_COMMIT), "try-repo", str(hooks), "ollamamax-ports-check",
                               "--all-files"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=840)

    drifting = try_repo()
    assert drifting.returncode == 1, drifting.stdout + drifting.stderr
    assert "ollamamax ports check" in drifting.stdout and "Failed" in drifting.stdout
    assert ".env:2 error drift gateway" in drifting.stdout and "13000" in drifting.stdout

    (project / ".env").write_text("# the gateway\nGATEWAY_PORT=13100\n")
    fixed = try_repo()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Passed" in fixed.stdout


@pytest.mark.timeout(900)
def test_the_hook_checks_the_repository_when_the_registry_names_no_files(
        tmp_path: Path) -> None:
    hooks = snapshot(tmp_path / "ollamamax-stack")
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    # No drift_files: the hook has to find the project's files itself.
    (project / "config" / "ports.toml").write_text(
        REGISTRY.replace('drift_files = [".env"]\n', "")
        + '\n[checks]\nexclude = ["old"]\n')
    (project / ".env").write_text("GATEWAY_PORT=13000\n")
    # Left out by `[checks] exclude` and by .gitignore: their drift is not the project's.
    (project / "old").mkdir()
    (project / "old" / ".env").write_text("GATEWAY_PORT=13001\n")
    (project / ".gitignore").write_text("scratch/\n")
    (project / "scratch").mkdir()
    (project / "scratch" / ".env").write_text("GATEWAY_PORT=13002\n")
    commit(project)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    env.pop("OLLAMAMAX_CONFIG", None)

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PRE_COMMIT), "try-repo", str(hooks), "ollamamax-ports-check",
                               "--all-files"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=840)

    drifting = try_repo()
    assert drifting.returncode == 1, drifting.stdout + drifting.stderr
    assert ".env:1 error drift gateway" in drifting.stdout and "13000" in drifting.stdout
    assert "13001" not in drifting.stdout and "13002" not in drifting.stdout

    (project / ".env").write_text("GATEWAY_PORT=13100\n")
    fixed = try_repo()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Passed" in fixed.stdout
