"""Service logs: the last lines of a file, and following many files as one stream.

Each line carries supervisord's stamp (supervise/logstamp.py); `tail` and `Follower.poll` give
the text alone, as the service wrote it, and `Follower.poll_lines` keeps the stamp. A followed
file is read to its end before a rotation (`name.log` renamed to `name.log.1`) moves on to the
new one, so no line is lost at a rotation, and a restart only appends to the same file.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ollamamax_stack.supervise.logstamp import split, text_of

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta",
          "bright_green", "bright_yellow", "bright_blue")


def tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file (all of them when `lines` < 0), without their stamps."""
    try:
        with open(path, "rb") as handle:
            if lines < 0:
                found = handle.read().decode(errors="replace").splitlines()
            else:
                found = [b.decode(errors="replace").rstrip("\r\n") for b in deque(handle, lines)]
    except OSError:
        return []
    return [text_of(line) for line in found]


def color(index: int) -> str:
    """The colour of the index-th service's prefix."""
    return COLORS[index % len(COLORS)]


@dataclass(frozen=True)
class LogLine:
    """One line of a service's log: its stamp (None on a line written without one) and text."""

    service: str
    stamp: bytes | None
    text: bytes

    def decoded(self) -> str:
        """The text as a str (undecodable bytes replaced)."""
        return self.text.decode(errors="replace").rstrip("\r")


@dataclass
class _Source:
    name: str
    path: Path
    from_end: bool
    handle: BinaryIO | None = None
    partial: bytes = b""
    last_stamp: bytes = b""  # what a line written without a stamp is sorted by

    def _open(self) -> bool:
        try:
            self.handle = open(self.path, "rb")  # noqa: SIM115 (kept open: a rotation renames it)
        except OSError:
            return False
        if self.from_end:
            self.handle.seek(0, os.SEEK_END)
        self.from_end = False  # a file that appears later (or after a rotation) is read whole
        return True

    def read(self) -> bytes:
        """What the file gained since the last read, across a rotation or a truncation."""
        if self.handle is None and not self._open():
            return b""
        assert self.handle is not None
        data = self.handle.read()
        try:
            now = os.stat(self.path)
        except OSError:
            return data  # gone for now (a rotation in progress, a removed run dir)
        mine = os.fstat(self.handle.fileno())
        if (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev):
            data += self.handle.read()  # the rotated file's last lines,
            data += self._rotated_since((mine.st_ino, mine.st_dev))  # any rotated since,
            self.handle.close()
            self.handle = None
            if self._open():  # then the new file
                assert self.handle is not None
                data += self.handle.read()
        elif mine.st_size < self.handle.tell():  # truncated in place: start over
            self.handle.seek(0)
            self.partial = b""
            data = self.handle.read()
        return data

    def _rotated_since(self, old: tuple[int, int]) -> bytes:
        """Whole files rotated after ours (`x.log.1` when ours is `x.log.2` by now)."""
        newer: list[bytes] = []
        index = 1
        while True:
            path = self.path.with_name(f"{self.path.name}.{index}")
            try:
                seen = os.stat(path)
            except OSError:
                return b""  # ours is gone past the backups kept: nothing to tell apart
            if (seen.st_ino, seen.st_dev) == old:
                return b"".join(reversed(newer))
            try:
                newer.append(path.read_bytes())
            except OSError:
                return b""
            index += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


@dataclass
class Follower:
    """Reads what several log files gain, line by line, remembering where each one stood."""

    sources: list[_Source] = field(default_factory=list)

    def add(self, name: str, path: Path, from_end: bool = True) -> None:
        """Follow `path` under `name`, from its current end (or from the start)."""
        source = _Source(name, path, from_end)
        source._open()
        self.sources.append(source)

    def offsets(self) -> dict[str, int]:
        """Where each followed file stands: what was there before the follower began."""
        return {s.name: s.handle.tell() for s in self.sources if s.handle is not None}

    def poll_lines(self) -> list[LogLine]:
        """Every complete line written since the last poll, stamp kept, in time order."""
        found: list[tuple[bytes, int, LogLine]] = []
        for source in self.sources:
            chunk = source.read()
            if not chunk:
                continue
            *complete, source.partial = (source.partial + chunk).split(b"\n")
            for line in complete:
                stamp, text = split(line)
                source.last_stamp = stamp or source.last_stamp
                found.append((source.last_stamp, len(found), LogLine(source.name, stamp, text)))
        # Several files gained lines since the last poll: interleave them by their stamps.
        return [line for _, _, line in sorted(found)]

    def poll(self) -> list[tuple[str, str]]:
        """(name, text) for every complete line written since the last poll."""
        return [(line.service, line.decoded()) for line in self.poll_lines()]

    def close(self) -> None:
        """Close every file followed."""
        for source in self.sources:
            source.close()
