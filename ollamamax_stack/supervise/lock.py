"""One `up` or `down` at a time per run directory: an fcntl lock, waited for within a bound."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.supervise.paths import RunPaths

LOCK_TIMEOUT_ENV = "OLLAMAMAX_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # longer than any `up` of the default stack takes

_held: set[Path] = set()  # run dirs this process holds: `up` may call `down` inside its lock


class StackBusy(OllamamaxError):
    """Another `up` or `down` holds the run directory for longer than we wait (exit 1)."""


def holder(path: Path) -> int | None:
    """The pid holding a flock on `path`, read from /proc/locks (Linux), if any."""
    try:
        inode = path.stat().st_ino
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                fields = line.split()
                # 1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == (
                        str(inode)):
                    return int(fields[4])
    except (OSError, ValueError):
        return None
    return None


def _timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        from ollamamax_stack.errors import UsageError

        raise UsageError(f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None


@contextmanager
def stack_lock(paths: RunPaths, create: bool = True) -> Iterator[None]:
    """Hold the run dir's lock; without the run dir (and `create` False) there is nothing to hold.

    Opening an existing lock file and locking it write nothing, so `down` works on a full disk.
    """
    run_dir = paths.run_dir
    if run_dir in _held:
        yield
        return
    if create:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(paths.stack_lock, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        if create:
            raise
        yield
        return
    try:
        deadline = time.monotonic() + _timeout()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = holder(paths.stack_lock)
                    who = f" (pid {pid})" if pid else ""
                    raise StackBusy(f"another up or down{who} holds {paths.stack_lock}; "
                                    "try again when it has finished") from None
                time.sleep(0.05)
        _held.add(run_dir)
        try:
            yield
        finally:
            _held.discard(run_dir)
    finally:
        os.close(fd)  # closing releases the lock
