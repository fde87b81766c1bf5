"""Every Unix socket of a stack fits AF_UNIX's 108 bytes, whatever the run dir's length."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.handoff.paths import probe_prefix, probe_socket
from tests.fixtures.stacks.harness import ROOT

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("length", [81, 83])
def test_a_run_dir_of_81_to_83_characters_comes_up(make_stack: Any, tmp_path: Path,
                                                    length: int) -> None:
    pad = length - len(str(tmp_path)) - 1
    assert pad > 0, tmp_path
    run_dir = tmp_path / ("r" * pad)
    assert len(str(run_dir)) == length
    stack = make_stack("held", run_dir)
    port = stack.registry.services["ollama"].primary_port
    ollama = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up = stack.cli("up", "-d", timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        assert stack.status()["stack"] == "up"
    finally:
        stack.cli("down")
        ollama.terminate()
        ollama.wait(10)


def test_a_socket_path_that_cannot_fit_is_one_line_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long_runtime = tmp_path / ("x" * (100 - len(str(tmp_path))))
    long_runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(long_runtime))
    with pytest.raises(OllamamaxError) as caught:
        probe_prefix(tmp_path / ("r" * 90), "inference.0a", ["api", "web"])
    message = str(caught.value)
    assert "\n" not in message and str(long_runtime) in message and "108" in message
    # A short run dir keeps its sockets inside, each full name within the limit.
    prefix = probe_prefix(tmp_path, "inference.0a", ["api", "web"])
    assert prefix.startswith(str(tmp_path))
    assert len(str(probe_socket(prefix, "web"))) < 108
