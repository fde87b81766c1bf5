"""Service logs: the last lines of a file, and following many files as one prefixed stream."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta",
          "bright_green", "bright_yellow", "bright_blue")


def tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file (all of them when `lines` < 0); none if it is missing."""
    try:
        with open(path, "rb") as handle:
            if lines < 0:
                return handle.read().decode(errors="replace").splitlines()
            return [b.decode(errors="replace").rstrip("\r\n") for b in deque(handle, lines)]
    except OSError:
        return []


def color(index: int) -> str:
    """The colour of the index-th service's prefix."""
    return COLORS[index % len(COLORS)]


@dataclass
class _Source:
    name: str
    path: Path
    offset: int
    partial: bytes = b""


@dataclass
class Follower:
    """Reads what several log files gain, line by line, remembering where each one stood."""

    sources: list[_Source] = field(default_factory=list)

    def add(self, name: str, path: Path, from_end: bool = True) -> None:
        """Follow `path` under `name`, from its current end (or from the start)."""
        try:
            offset = path.stat().st_size if from_end else 0
        except OSError:
            offset = 0
        self.sources.append(_Source(name, path, offset))

    def poll(self) -> list[tuple[str, str]]:
        """(name, line) for every complete line written since the last poll."""
        found: list[tuple[str, str]] = []
        for source in self.sources:
            try:
                size = os.stat(source.path).st_size
            except OSError:
                continue
            if size < source.offset:  # rotated or truncated: start over
                source.offset, source.partial = 0, b""
            if size == source.offset:
                continue
            with open(source.path, "rb") as handle:
                handle.seek(source.offset)
                chunk = handle.read(size - source.offset)
            source.offset += len(chunk)
            *complete, source.partial = (source.partial + chunk).split(b"\n")
            found.extend((source.name, line.decode(errors="replace").rstrip("\r"))
                         for line in complete)
        return found
