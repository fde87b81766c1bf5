"""Socket activation (LISTEN_FDS) and a taken port named by its holder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.services_procs import REGISTRY, ROOT, Proc, http, wait_http
from tests.portbase import free_port

pytestmark = pytest.mark.timeout(60)


def test_service_serves_on_an_inherited_socket_without_binding(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    unused = free_port()  # PORT says this one; the service must not bind it
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    env = {**os.environ, "PORT": str(unused), "OLLAMAMAX_INFERENCE_URL": "http://127.0.0.1:9",
           "OLLAMAMAX_RUN_DIR": str(tmp_path), "LISTEN_FDS": "1"}
    env.pop("OLLAMAMAX_CONFIG", None)
    # LISTEN_PID must be the service's own pid: sh sets it to $$, then execs in place.
    argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" -m ollamamax_stack serve hub',
            sys.executable]
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, pass_fds=(fd, 3),
                                 preexec_fn=lambda: os.dup2(fd, 3))  # systemd's first fd
    proc = Proc("hub", popen, log)
    listener.close()  # only the child holds it now
    try:
        wait_http(proc, f"http://127.0.0.1:{port}/health")
        status, health = http("GET", f"http://127.0.0.1:{port}/health")
        assert status == 200 and health["service"] == "hub"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", unused), timeout=1).close()
    finally:
        proc.stop()


def test_a_taken_port_exits_1_naming_the_holder(tmp_path: Path) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        env = {**os.environ, "PORT": str(port), "OLLAMAMAX_INFERENCE_URL": "http://127.0.0.1:9",
               "OLLAMAMAX_RUN_DIR": str(tmp_path)}
        env.pop("OLLAMAMAX_CONFIG", None)
        done = subprocess.run([sys.executable, "-m", "ollamamax_stack", "serve", "hub"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    finally:
        holder.close()
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert f"port {port}" in lines[0] and f"pid {os.getpid()}" in lines[0]


def test_unknown_service_and_bad_port_are_usage_errors(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "ollamamax_stack", "--config", str(REGISTRY)]
    done = subprocess.run([*base, "serve", "postgrez"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "unknown service 'postgrez'" in done.stderr
    env = {**os.environ, "PORT": "eighty", "OLLAMAMAX_RUN_DIR": str(tmp_path)}
    env.pop("OLLAMAMAX_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "ollamamax_stack", "serve", "hub"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "PORT='eighty'" in done.stderr
