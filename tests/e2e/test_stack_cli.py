"""The stack commands as a user meets them: one-line errors, exit codes, the rendered config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASIC = ROOT / "tests" / "fixtures" / "stacks" / "basic" / "ports.toml"


def _run(*args: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ollamamax_stack", "--config", str(BASIC),
                           "--run-dir", str(run_dir), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_status_of_a_stack_never_started_is_down(tmp_path: Path) -> None:
    done = _run("status", "--json", run_dir=tmp_path)
    assert done.returncode == 3
    assert done.stdout.strip().startswith('{"stack": "down"')


def test_unknown_service_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _run("up", "-d", "nosuch", run_dir=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unknown service 'nosuch'" in done.stderr
    assert "Traceback" not in done.stderr


def test_start_stop_restart_need_a_running_stack(tmp_path: Path) -> None:
    for command in ("start", "stop", "restart"):
        done = _run(command, "api", run_dir=tmp_path)
        assert done.returncode == 1
        assert done.stderr.startswith("ollamamax: error: the stack is not running")


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    done = _run("down", run_dir=tmp_path)
    assert done.returncode == 0 and "nothing to stop" in done.stdout


def test_render_supervisord_prints_the_config_up_uses(tmp_path: Path) -> None:
    done = _run("render", "supervisord", run_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("[program:") == 5
    assert "autostart=false" in done.stdout and f"file={tmp_path}/supervisord.sock" in done.stdout


def test_logs_of_a_stack_never_started_print_nothing(tmp_path: Path) -> None:
    done = _run("logs", "api", run_dir=tmp_path)
    assert done.returncode == 0 and done.stdout == ""
