"""Run redis-server on its registry port, keeping everything in the run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from ollamamax_stack.dependents.binaries import find_program


def redis_argv(program: Path, host: str, port: int, directory: Path) -> list[str]:
    """redis-server's command line: no config file, no persistence, logs on stdout."""
    argv = [str(program), "--port", str(port), "--bind", host, "--dir", str(directory),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
    if os.environ.get("NOTIFY_SOCKET"):
        argv += ["--supervised", "systemd"]  # redis then sends READY=1 itself
    return argv


def launch_redis(host: str, port: int, run_dir: Path) -> NoReturn:
    """Exec redis-server (pid stays the supervisor's)."""
    program = find_program("redis-server", "redis-server")
    directory = run_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    argv = redis_argv(program, host, port, directory)
    os.execv(argv[0], argv)
