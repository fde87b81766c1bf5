"""Run redis-server on its registry port with the stack's generated password, in the run dir."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from ollamamax_stack.dependents.binaries import find_program
from ollamamax_stack.registry.environ import password_file
from ollamamax_stack.services.common.secret import ensure_secret

CONFIG_FILE = "redis.conf"


def write_config(directory: Path, password: str) -> Path:
    """A 0600 config holding `requirepass`: the password never appears on a command line."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    staged = directory / f".{CONFIG_FILE}.tmp"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f'requirepass "{password}"\n')
    os.replace(staged, path)
    return path


def redis_argv(program: Path, config: Path, host: str, port: int, directory: Path) -> list[str]:
    """redis-server's command line: our config, no persistence, logs on stdout."""
    argv = [str(program), str(config), "--port", str(port), "--bind", host, "--dir",
            str(directory), "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", ""]
    if os.environ.get("NOTIFY_SOCKET"):
        argv += ["--supervised", "systemd"]  # redis then sends READY=1 itself
    return argv


def launch_redis(host: str, port: int, run_dir: Path,
                 env: Mapping[str, str] | None = None) -> NoReturn:
    """Generate the password on first start, write the config, exec redis-server."""
    program = find_program("redis-server", "redis-server")
    directory = run_dir / "redis"
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = password_file("redis", os.environ if env is None else env, run_dir)
    password = ensure_secret(secret, "redis password").decode()
    argv = redis_argv(program, write_config(directory, password), host, port, directory)
    os.execv(argv[0], argv)
