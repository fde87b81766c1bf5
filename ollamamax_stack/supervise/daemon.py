"""Start supervisord for a run directory in its own session, or find the one already running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.render.supervisord import render_supervisord
from ollamamax_stack.supervise.config import SUPERVISOR_ENV
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.rpc import (
    ProcessInfo,
    Supervisor,
    SupervisorClient,
    SupervisorUnreachable,
)
from ollamamax_stack.supervise.supervisord import MODULE as SUPERVISORD_MODULE

START_TIMEOUT = 30.0  # generous: a loaded machine can take seconds just to import supervisor


def connect(paths: RunPaths) -> Supervisor | None:
    """A client of the supervisord serving this run directory, if one answers."""
    if not paths.socket.exists():
        return None
    client = Supervisor(paths.socket, timeout=5.0)
    return client if client.alive() else None


def write_config(registry: Registry) -> bool:
    """Render supervisord.conf into the run dir; True when its content changed."""
    paths = RunPaths(registry.run_dir)
    paths.prepare()
    text = render_supervisord(registry)
    try:
        if paths.config.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    staged = paths.config.with_suffix(".tmp")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, paths.config)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, exc.filename or str(paths.config)) from exc
    return True


def launch(paths: RunPaths) -> subprocess.Popen[bytes]:
    """Start supervisord (config already written) in a new session, detached from the terminal."""
    if paths.socket.exists():
        paths.socket.unlink()  # a stale socket from a killed supervisord would refuse the bind
    env = dict(os.environ)
    env[SUPERVISOR_ENV] = str(paths.run_dir)
    out = open(paths.run_dir / "supervisord.out", "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", SUPERVISORD_MODULE, "-c", str(paths.config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=str(paths.run_dir), close_fds=True)
    finally:
        out.close()


def wait_until_answering(paths: RunPaths, process: subprocess.Popen[bytes],
                         timeout: float = START_TIMEOUT) -> Supervisor:
    """Poll the socket until supervisord answers; a clear error if it died or hangs."""
    deadline = time.monotonic() + timeout
    client = Supervisor(paths.socket, timeout=5.0)
    while True:
        if paths.socket.exists():
            try:
                client.pid()
                return client
            except SupervisorUnreachable:
                pass
        code = process.poll()
        if code is not None:
            tail = _tail(paths.run_dir / "supervisord.out")
            raise OllamamaxError(f"supervisord exited with status {code} at start ({tail}); "
                                 f"config: {paths.config}")
        if time.monotonic() > deadline:
            process.kill()
            raise OllamamaxError(f"supervisord did not answer on {paths.socket} within "
                                 f"{timeout:.0f}s; see {paths.supervisord_log}")
        time.sleep(0.01)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def _regroup(added: list[str], changed: list[str], removed: list[str],
             infos: dict[str, ProcessInfo]) -> tuple[list[str], list[str]]:
    """(groups to remove, groups to add) for a changed config: running programs stay as they are."""
    idle = [n for n in [*removed, *changed] if not infos.get(n) or not infos[n].running]
    return idle, [n for n in changed if n in idle] + list(added)


def update(client: Supervisor) -> list[str]:
    """Apply a changed config to a running supervisord (like `supervisorctl update`): new groups."""
    added, changed, removed = client.reload()
    drop, add = _regroup(added, changed, removed, client.all_info())
    for name in drop:
        client.remove_group(name)
    for name in add:
        client.add_group(name)
    return added


async def update_async(client: SupervisorClient) -> list[str]:
    """`update` on the event loop's client."""
    added, changed, removed = await client.reload()
    drop, add = _regroup(added, changed, removed, await client.all_info())
    for name in drop:
        await client.remove_group(name)
    for name in add:
        await client.add_group(name)
    return added
