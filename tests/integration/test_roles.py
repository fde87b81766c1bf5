"""Roles of keys: control-plane writes need an admin key; node registration has limits."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import termios
from collections.abc import Iterator

import pytest

from tests.integration.services_procs import Stack, fake_nodes, http, running_stack

pytestmark = pytest.mark.timeout(120)
USER, ADMIN, ENV_ADMIN = "sk-user-1", "sk-admin-1", "sk-env-admin"
MAX_NODES = 3


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("roles")
    keys = tmp / "keys"
    keys.write_text(f"{USER} alice\n{ADMIN} root admin\n")
    nodes = fake_nodes(tmp, [("a", "llama3.2", [])])
    env = {"OLLAMAMAX_API_KEYS_FILE": str(keys), "OLLAMAMAX_ADMIN_KEYS": ENV_ADMIN,
           "OLLAMAMAX_MAX_NODES": str(MAX_NODES),
           "OLLAMAMAX_NODE_NETWORKS": "127.0.0.0/8,ollama-1.internal"}
    with running_stack(tmp, nodes, ["inference", "gateway"], env=env) as running:
        running.nodes = nodes  # type: ignore[attr-defined]
        yield running


def test_a_user_key_cannot_change_nodes_an_admin_key_can(stack: Stack) -> None:
    base = stack.url("inference") + "/api/v1/nodes"
    status, body = http("POST", base, {"url": "http://127.0.0.1:9"}, bearer(USER))
    assert status == 403 and "admin" in body["error"], body
    status, node = http("POST", base, {"url": "http://127.0.0.1:9"}, bearer(ADMIN))
    assert status == 201, node
    real = stack.nodes[0]  # type: ignore[attr-defined]
    _, listing = http("GET", base, headers=bearer(USER))
    real_id = next(n["id"] for n in listing["nodes"] if n["url"] == real.url)
    status, body = http("DELETE", f"{base}/{real_id}", headers=bearer(USER))
    assert status == 403 and "admin" in body["error"], body
    assert http("DELETE", f"{base}/{node['id']}", headers=bearer(ENV_ADMIN))[0] == 200
    # A token keeps its key's role: a user's JWT is refused, an admin's accepted.
    _, user_jwt = http("POST", stack.url("gateway") + "/auth/token", headers=bearer(USER))
    _, admin_jwt = http("POST", stack.url("gateway") + "/auth/token", headers=bearer(ADMIN))
    jwt_user, jwt_admin = user_jwt["access_token"], admin_jwt["access_token"]
    assert http("POST", base, {"url": "http://127.0.0.1:10"}, bearer(jwt_user))[0] == 403
    status, node = http("POST", base, {"url": "http://127.0.0.1:10"}, bearer(jwt_admin))
    assert status == 201, node
    assert http("DELETE", f"{base}/{node['id']}", headers=bearer(jwt_admin))[0] == 200
    _, me = http("GET", stack.url("gateway") + "/auth/me", headers=bearer(jwt_admin))
    assert me["role"] == "admin"


def test_only_an_admin_revokes_someone_elses_token(stack: Stack) -> None:
    gateway = stack.url("gateway")
    _, issued = http("POST", gateway + "/auth/token", headers=bearer(USER))
    victim = issued["access_token"]
    status, body = http("POST", gateway + "/auth/revoke", {"token": victim}, bearer(USER))
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert http("GET", gateway + "/auth/me", headers=bearer(victim))[0] == 200
    status, body = http("POST", gateway + "/auth/revoke", {"token": victim}, bearer(ADMIN))
    assert status == 200, body
    assert http("GET", gateway + "/auth/me", headers=bearer(victim))[0] == 401


def test_node_registration_has_a_limit_and_an_allowlist(stack: Stack) -> None:
    base = stack.url("inference") + "/api/v1/nodes"
    status, body = http("POST", base, {"url": "http://10.1.2.3:11434"}, bearer(ADMIN))
    assert status == 403 and "OLLAMAMAX_NODE_NETWORKS" in body["error"], body
    status, body = http("POST", base, {"url": "http://elsewhere.example:11434"}, bearer(ADMIN))
    assert status == 403 and "OLLAMAMAX_NODE_NETWORKS" in body["error"], body
    added = []
    for port in (11, 12):  # one node is there already: the limit is reached with two more
        status, node = http("POST", base, {"url": f"http://127.0.0.1:{port}"}, bearer(ADMIN))
        assert status == 201, node
        added.append(node["id"])
    status, body = http("POST", base, {"url": "http://127.0.0.1:13"}, bearer(ADMIN))
    assert status == 409 and f"{MAX_NODES}" in body["error"], body
    assert "OLLAMAMAX_MAX_NODES" in body["error"]
    # Anonymous callers of /health/ready see how many nodes are down, not why nor where.
    status, ready = http("GET", stack.url("inference") + "/health/ready")
    assert status == 200 and ready["degraded"], ready
    shown = " ".join(ready["reasons"])
    assert "127.0.0.1:11" not in shown and "connect" not in shown, ready
    assert "2 of 3" in shown, ready
    _, detailed = http("GET", stack.url("inference") + "/health/ready", headers=bearer(USER))
    assert "http://127.0.0.1:11" in " ".join(detailed["reasons"]), detailed
    for node_id in added:
        assert http("DELETE", f"{base}/{node_id}", headers=bearer(ADMIN))[0] == 200


def chat_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OLLAMAMAX_TOKEN", "OLLAMAMAX_API_KEY")}
    return {**env, **extra}


def test_chat_takes_the_token_from_the_environment_never_from_argv(stack: Stack) -> None:
    refused = subprocess.run(stack.argv("chat", "--token", USER, "hi"), capture_output=True,
                             text=True, timeout=60, env=chat_env(), stdin=subprocess.DEVNULL)
    assert refused.returncode == 2, refused.stderr
    assert "OLLAMAMAX_TOKEN" in refused.stderr and "connected" not in refused.stderr
    done = subprocess.run(stack.argv("chat", "--model", "llama3.2", "hi"), capture_output=True,
                          text=True, timeout=60, env=chat_env(OLLAMAMAX_TOKEN=USER),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Hello from llama3.2. You said: hi"
    # Without a token and without a terminal to ask on: one line saying what to set.
    alone = subprocess.run(stack.argv("chat", "hi"), capture_output=True, text=True,
                           timeout=60, env=chat_env(), stdin=subprocess.DEVNULL)
    assert alone.returncode == 1 and "OLLAMAMAX_TOKEN" in alone.stderr, alone.stderr


def test_chat_asks_for_the_token_on_a_terminal(stack: Stack) -> None:
    main, side = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(stack.argv("chat", "--model", "llama3.2", "hi"), stdin=side,
                            stdout=side, stderr=side, env=chat_env(),
                            preexec_fn=controlling_terminal)
    os.close(side)
    seen = b""
    try:
        while b"token" not in seen.lower():
            seen += os.read(main, 1024)
        os.write(main, USER.encode() + b"\n")
        with contextlib.suppress(OSError):  # EIO once the child closed the terminal
            while chunk := os.read(main, 1024):
                seen += chunk
        assert proc.wait(60) == 0, seen
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    assert b"Hello from llama3.2. You said: hi" in seen
    assert USER.encode() not in seen  # not echoed
