"""`ollamamax render`, `systemd install|uninstall` and `launch` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.render_project import ROOT

OLLAMAMAX = [sys.executable, "-m", "ollamamax_stack"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OLLAMAMAX, *args], capture_output=True, text=True, check=False,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ollamamax: error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_unknown_target_is_one_line_and_exit_2() -> None:
    one_line_error(run("render", "helm"), 2, "'helm'", "k8s", "systemd")


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    one_line_error(run("render", "env", "--out", str(blocker)), 2, str(blocker))
    assert blocker.read_text() == "keep"


def test_out_that_cannot_be_written_is_refused() -> None:
    one_line_error(run("render", "systemd", "--out", "/proc/self/ollamamax"), 2,
                   "/proc/self/ollamamax")


def test_invalid_kubernetes_name_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    out.mkdir()
    one_line_error(run("render", "k8s", "--namespace", "Team_A", "--out", str(out)), 2,
                   "'Team_A'", "Kubernetes")
    assert list(out.iterdir()) == []


def test_render_prints_to_stdout_and_writes_with_out(tmp_path: Path) -> None:
    printed = run("--offset", "5", "render", "prometheus")
    assert printed.returncode == 0 and "127.0.0.1:13105" in printed.stdout
    several = run("render", "k8s", "--replicas", "3")
    assert "# ==> gateway.yaml <==" in several.stdout and "replicas: 3" in several.stdout
    written = run("render", "systemd", "--socket-activation", "--out", str(tmp_path))
    assert written.returncode == 0, written.stderr
    assert str(tmp_path / "ollamamax-gateway.socket") in written.stdout.splitlines()
    assert (tmp_path / "ollamamax.target").is_file()


def test_systemd_install_and_uninstall_for_the_user(tmp_path: Path) -> None:
    env = {"OLLAMAMAX_SYSTEMD_DIR": str(tmp_path)}
    installed = run("systemd", "install", "--user", env=env)
    assert installed.returncode == 0, installed.stderr
    assert "systemctl --user enable --now ollamamax.target" in installed.stdout
    unit = (tmp_path / "ollamamax-gateway.service").read_text()
    assert "DynamicUser" not in unit  # a user manager cannot switch users
    (tmp_path / "default.target.wants").mkdir()
    (tmp_path / "default.target.wants" / "ollamamax.target").symlink_to(
        tmp_path / "ollamamax.target")
    removed = run("systemd", "uninstall", "--user", env=env)
    assert removed.returncode == 0, removed.stderr
    assert not any(tmp_path.glob("ollamamax*")) and not any(tmp_path.glob("*/ollamamax*"))
    one_line_error(run("systemd", "uninstall", "--user", env=env), 2, "nothing to uninstall")


@pytest.mark.parametrize("program, package", [("redis", "redis-server"),
                                              ("prometheus", "prometheus")])
def test_launch_without_the_program_names_the_package_and_exits_69(
        tmp_path: Path, program: str, package: str) -> None:
    result = run("--profile", "full", "--run-dir", str(tmp_path), "launch", program,
                 env={"PATH": str(tmp_path)})
    one_line_error(result, 69, f"apt-get install {package}")


def test_render_supervisord_dispatches_to_the_supervisors_renderer() -> None:
    full = run("--profile", "full", "render", "supervisord")
    assert full.returncode == 0, full.stderr
    # The socket holder, two slots for each of the 4 own services, and the 3 dependents.
    assert full.stdout.count("[program:") == 12
    assert "[program:_sockets]" in full.stdout and "[program:gateway.0b]" in full.stdout
    assert "[program:redis]" in full.stdout and "[program:redis.0a]" not in full.stdout


def test_compose_out_writes_each_password_file_once_mode_0600(tmp_path: Path) -> None:
    first = run("--profile", "full", "render", "compose", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    files = [tmp_path / "secrets" / n for n in ("postgres.password", "redis.password")]
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(path.read_text().strip()) >= 32
        assert str(path) in first.stdout
    kept = [p.read_text() for p in files]
    again = run("--profile", "full", "render", "compose", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert [p.read_text() for p in files] == kept  # never overwritten
    assert kept[0] != kept[1]


def test_compose_out_refuses_a_password_file_others_can_read(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    shared = tmp_path / "secrets" / "redis.password"
    shared.write_text("x" * 40)
    shared.chmod(0o644)
    one_line_error(run("--profile", "full", "render", "compose", "--out", str(tmp_path)), 1,
                   str(shared), "chmod 600")


def test_compose_without_the_full_profile_writes_no_password(tmp_path: Path) -> None:
    result = run("render", "compose", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secrets").exists()


def test_k8s_generates_the_secret_files_only_when_asked(tmp_path: Path) -> None:
    plain = run("--profile", "full", "render", "k8s", "--out", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr
    assert not (tmp_path / "plain" / "secrets").exists()
    assert "kubectl create secret generic ollamamax-passwords" in (
        tmp_path / "plain" / "kustomization.yaml").read_text()
    out = tmp_path / "generated"
    made = run("--profile", "full", "render", "k8s", "--generate-secrets", "--out", str(out))
    assert made.returncode == 0, made.stderr
    for name in ("postgres.password", "redis.password"):
        assert (out / "secrets" / name).stat().st_mode & 0o777 == 0o600
    one_line_error(run("--profile", "full", "render", "k8s", "--generate-secrets"), 2,
                   "--generate-secrets", "--out")
    one_line_error(run("--profile", "full", "render", "compose", "--generate-secrets"), 2,
                   "--generate-secrets", "k8s")
