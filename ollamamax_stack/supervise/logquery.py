"""Reading services' logs back: rotated files in order, filtered by time and pattern, merged.

A service's file is in time order (one supervisord stamps and writes every line of it), so
`--since` is a binary search on the stamps and `--until` ends the read. A `--grep` runs the
pattern over the whole file at once and looks only at the lines it matches, rather than at
every line: that is what keeps it near `grep` itself on large logs.
"""

from __future__ import annotations

import heapq
import mmap
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.supervise.logs import LogLine
from ollamamax_stack.supervise.logstamp import PREFIX_WIDTH, STAMP_WIDTH, is_stamped, split

# Patterns whose match depends on where the line starts: checked line by line, never on the
# whole file (there, `^` would meet the stamp, not the service's text).
_LINE_ANCHORED = re.compile(r"\^|\\A|\(\?<")


@dataclass(frozen=True)
class Query:
    """Which lines to read: stamps from `since` to `until` (inclusive), matching `pattern`."""

    since: bytes | None = None
    until: bytes | None = None
    pattern: re.Pattern[bytes] | None = None
    invert: bool = False

    def keeps(self, text: bytes) -> bool:
        """Whether a line's text passes the pattern (and --invert)."""
        if self.pattern is None:
            return True
        return (self.pattern.search(text) is None) is self.invert


def log_files(path: Path) -> list[Path]:
    """A service's log and its rotated copies, oldest first (`x.log.2`, `x.log.1`, `x.log`)."""
    rotated: list[tuple[int, Path]] = []
    for entry in path.parent.glob(f"{glob_escape(path.name)}.*"):
        suffix = entry.name[len(path.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), entry))
    found = [p for _, p in sorted(rotated, reverse=True)]
    return [*found, path] if path.exists() else found


def glob_escape(name: str) -> str:
    """A file name as a glob matching only itself."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _line_start(buf: mmap.mmap, pos: int) -> int:
    """The start of the first line that begins at or after `pos`."""
    if pos <= 0:
        return 0
    newline = buf.find(b"\n", pos - 1)
    return len(buf) if newline < 0 else newline + 1


def _since_offset(buf: mmap.mmap, since: bytes) -> int:
    """Where the first line stamped `since` or later may begin (never after it)."""
    low, high = 0, len(buf)
    while low < high:
        mid = (low + high) // 2
        start = _line_start(buf, mid)
        head = buf[start:start + PREFIX_WIDTH]
        if start < high and is_stamped(head) and head[:STAMP_WIDTH] < since:
            low = start + 1  # this line and every one before it are too old
        else:
            high = mid
    return _line_start(buf, low)


def _stamp_before(buf: mmap.mmap, start: int) -> bytes:
    """The stamp of the nearest stamped line before `start` (b"" if none)."""
    while start > 0:
        previous = buf.rfind(b"\n", 0, start - 1) + 1
        head = buf[previous:previous + PREFIX_WIDTH]
        if is_stamped(head):
            return head[:STAMP_WIDTH]
        start = previous
    return b""


Sorted = tuple[bytes, LogLine]  # (the stamp a line sorts by, the line)


def _by_line(name: str, buf: mmap.mmap, start: int, query: Query) -> Iterator[Sorted]:
    last = _stamp_before(buf, start)
    size, pos = len(buf), start
    while pos < size:
        newline = buf.find(b"\n", pos)
        end = size if newline < 0 else newline
        stamp, text = split(buf[pos:end])
        pos = end + 1
        last = stamp or last
        if query.until is not None and last > query.until:
            return
        if query.since is not None and last < query.since:
            continue
        if query.keeps(text):
            yield last, LogLine(name, stamp, text)


def _by_match(name: str, buf: mmap.mmap, start: int, query: Query,
              search: re.Pattern[bytes]) -> Iterator[Sorted]:
    """Lines that `search` (the pattern over the whole file) finds, each checked on its own."""
    pos = start
    while True:
        found = search.search(buf, pos)
        if found is None:
            return
        begin = buf.rfind(b"\n", pos, found.start()) + 1 or pos
        newline = buf.find(b"\n", found.start())
        end = len(buf) if newline < 0 else newline
        pos = end + 1
        stamp, text = split(buf[begin:end])
        when = stamp or _stamp_before(buf, begin)
        if query.until is not None and when > query.until:
            return
        if (query.since is None or when >= query.since) and query.keeps(text):
            yield when, LogLine(name, stamp, text)


def read_file(name: str, path: Path, query: Query, end: int | None = None) -> Iterator[Sorted]:
    """The lines of one file that the query keeps, in file order (its first `end` bytes)."""
    if end == 0:
        return
    try:
        with open(path, "rb") as handle:
            try:
                buf = mmap.mmap(handle.fileno(), end or 0, access=mmap.ACCESS_READ)
            except ValueError:
                return  # an empty file (or `end` 0)
    except OSError:
        return
    with buf:
        start = _since_offset(buf, query.since) if query.since is not None else 0
        pattern = query.pattern
        if pattern is not None and not query.invert and not _LINE_ANCHORED.search(
                pattern.pattern.decode(errors="replace")):
            search = re.compile(pattern.pattern, pattern.flags | re.MULTILINE)
            yield from _by_match(name, buf, start, query, search)
        else:
            yield from _by_line(name, buf, start, query)


def read_service(name: str, path: Path, query: Query, lines: int = -1,
                 end: int | None = None) -> Iterator[Sorted]:
    """A service's lines across its rotated files, oldest first; the last `lines` if >= 0.

    `end`: read the live file only so far (a follower takes over from there).
    """
    stream: Iterable[Sorted] = (line for file in log_files(path) for line in read_file(
        name, file, query, end if file == path else None))
    if lines >= 0:
        stream = deque(stream, lines)
    yield from stream


def read(sources: list[tuple[str, Path]], query: Query, lines: int = -1,
         ends: dict[str, int] | None = None) -> Iterator[LogLine]:
    """Every service's lines that the query keeps, interleaved by time."""
    ends = ends or {}
    streams = [read_service(name, path, query, lines, ends.get(name)) for name, path in sources]
    for _, line in heapq.merge(*streams, key=lambda item: item[0]):
        yield line
