"""The rendered compose redis line, run by a real shell and redis-server: it asks for the secret.

The container is replaced by a directory: `/data` and `/run/secrets` point into tmp, and the
image's `docker-entrypoint.sh` (which only drops to the redis user before it execs) is a
one-line `exec "$@"`. Everything else is the rendered text, with compose's `$$` made `$`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.compose import render_compose
from ollamamax_stack.services.common.redis_link import RedisLink
from tests.integration.services_procs import REGISTRY, registry_ports, wait_until
from tests.portbase import free_offset
from tests.system import missing_program

pytestmark = pytest.mark.timeout(60)
SECRET = "/run/secrets/redis.password"


def in_tmp(word: str, tmp: Path, secret: Path) -> str:
    """A rendered word as compose hands it to the container, with the container's paths in tmp."""
    return (word.replace("$$", "$").replace(SECRET, str(secret))
            .replace("/data/", f"{tmp / 'data'}/"))


@dataclass
class Rendered:
    """The rendered compose service, and the redis-server its command line started."""

    service: dict[str, Any]
    port: int
    secret: Path
    proc: subprocess.Popen[bytes]


@pytest.fixture
def redis_as_rendered(tmp_path: Path) -> Iterator[Rendered]:
    if shutil.which("redis-server") is None:
        missing_program("redis-server", "redis-server")
    registry = load_registry(REGISTRY, profile="full", offset=free_offset(registry_ports()))
    port = registry.services["redis"].primary_port
    service = yaml.safe_load(render_compose(registry)["docker-compose.yml"])["services"]["redis"]
    secret = tmp_path / "redis.password"
    secret.write_text("rendered-redis-password-0123456789abcdefghij\n")
    secret.chmod(0o600)
    (tmp_path / "data").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    entrypoint = bin_dir / "docker-entrypoint.sh"
    entrypoint.write_text('#!/bin/sh\nexec "$@"\n')
    entrypoint.chmod(0o755)
    argv = [in_tmp(w, tmp_path, secret) for w in service["command"]]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.Popen(argv, cwd=tmp_path / "data", env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def listening() -> bool:
            assert proc.poll() is None, f"the rendered redis line exited {proc.returncode}"
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, timeout=30, what=f"redis from the rendered line on {port}")
        yield Rendered(service, port, secret, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_rendered_redis_refuses_strangers_and_the_stacks_link_proves_it(
        redis_as_rendered: Rendered, tmp_path: Path) -> None:
    secret, proc = redis_as_rendered.secret, redis_as_rendered.proc
    link = RedisLink(f"redis://127.0.0.1:{redis_as_rendered.port}", password_file=secret)
    assert asyncio.run(link.check()), link.error
    # The password went through a 0600 file, not onto the command line others see in ps.
    assert (tmp_path / "data" / "redis.conf").stat().st_mode & 0o777 == 0o600
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
    assert "redis-server" in cmdline and secret.read_text().strip() not in cmdline


def test_rendered_healthcheck_passes_with_the_password_and_fails_without(
        redis_as_rendered: Rendered, tmp_path: Path) -> None:
    secret = redis_as_rendered.secret
    kind, line = redis_as_rendered.service["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    healthy = subprocess.run(["sh", "-c", in_tmp(line, tmp_path, secret)], check=False)
    assert healthy.returncode == 0
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    unhealthy = subprocess.run(["sh", "-c", in_tmp(line, tmp_path, wrong)], check=False,
                               capture_output=True)
    assert unhealthy.returncode != 0
