"""The stack's events as JSON lines in the run dir (`events.jsonl`, rotated by size), and reading
them back: everything so far, or following the file live across rotations.

Writers append whole lines under the state lock's sibling (`events.lock`), so the watcher, `up`
and the CLI's commands never interleave or rotate under each other.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ollamamax_stack.supervise.machine import Event

MAX_BYTES = 1 << 20  # one file of events; the previous one is kept as events.jsonl.1
FOLLOW_PERIOD = 0.1


def path_of(run_dir: Path) -> Path:
    """The live events file of a run dir."""
    return run_dir / "events.jsonl"


def _rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def append(run_dir: Path, event: Event, max_bytes: int = MAX_BYTES) -> None:
    """Add one event; rotate first when the file has reached `max_bytes`."""
    path = path_of(run_dir)
    line = json.dumps(event.stamped().as_json(), separators=(",", ":")) + "\n"
    with open(run_dir / "events.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                if path.stat().st_size + len(line) > max_bytes:
                    os.replace(path, _rotated(path))
            except FileNotFoundError:
                pass
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _parse(line: str) -> Event | None:
    try:
        data: Any = json.loads(line)
    except ValueError:
        return None  # half a line of a writer that died mid-write
    return Event.from_json(data) if isinstance(data, dict) else None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def read(run_dir: Path, since: float = 0.0) -> list[Event]:
    """Every event kept (the rotated file first) at or after `since`."""
    path = path_of(run_dir)
    found = [_parse(line) for line in [*_lines(_rotated(path)), *_lines(path)]]
    return [e for e in found if e is not None and e.time >= since]


def follow(run_dir: Path, since: float = 0.0, period: float = FOLLOW_PERIOD,
           stop: float | None = None, done: Callable[[], bool] | None = None
           ) -> Iterator[Event]:
    """The events at or after `since`, then each new one as it is written (until `stop`, a
    monotonic deadline, or `done()`); a rotation is noticed by the file's identity."""
    path = path_of(run_dir)
    yield from read(run_dir, since)
    try:
        stat = path.stat()
        inode, offset = stat.st_ino, stat.st_size
    except OSError:
        inode, offset = None, 0
    partial = ""
    while (stop is None or time.monotonic() < stop) and not (done and done()):
        try:
            stat = path.stat()
        except OSError:
            time.sleep(period)
            continue
        if stat.st_ino != inode:  # rotated: finish the old file, then read the new from 0
            if inode is not None:
                old = _rotated(path)
                try:
                    if old.stat().st_ino == inode:
                        with open(old, encoding="utf-8", errors="replace") as handle:
                            handle.seek(offset)
                            for line in (partial + handle.read()).splitlines():
                                if (event := _parse(line)) is not None:
                                    yield event
                except OSError:
                    pass
            inode, offset, partial = stat.st_ino, 0, ""
        if stat.st_size > offset:
            with open(path, encoding="utf-8", errors="replace") as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset = handle.tell()
            *complete, partial = (partial + chunk).split("\n")
            for line in complete:
                if (event := _parse(line)) is not None:
                    yield event
            continue
        time.sleep(period)
