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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.supervise.logs import LogLine
from ollamamax_stack.supervise.logstamp import PREFIX_WIDTH, STAMP_WIDTH, is_stamped, split

# Patterns whose match depends on where the line starts: checked line by line, never on the
# whole file (there, `^` would meet the stamp, not the service's text).
_LINE_ANCHORED = re.compile(r"\^|\\A|\(\?<")
SCAN_BACK_LINES = 10_000  # how far back an unstamped line looks for its time
_META = re.compile(rb"[.^$*+?{}\[\]\\|()]")


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
    """The stamp of the nearest stamped line before `start` (b"" if none close enough).

    Only a log written before lines were stamped lacks them for long: it is not searched
    back through whole.
    """
    for _ in range(SCAN_BACK_LINES):
        if start <= 0:
            break
        previous = buf.rfind(b"\n", 0, start - 1) + 1
        head = buf[previous:previous + PREFIX_WIDTH]
        if is_stamped(head):
            return head[:STAMP_WIDTH]
        start = previous
    return b""


Sorted = tuple[bytes, LogLine]  # (the stamp a line sorts by, the line)


def _by_line(name: str, buf: mmap.mmap, start: int, query: Query,
             before: bytes = b"") -> Iterator[Sorted]:
    last = _stamp_before(buf, start) or before
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
              search: Callable[[int], int], before: bytes = b"") -> Iterator[Sorted]:
    """Lines where `search(pos)` (over the whole file) finds the pattern, each checked alone."""
    pos = start
    while True:
        at = search(pos)
        if at < 0:
            return
        begin = buf.rfind(b"\n", pos, at) + 1 or pos
        newline = buf.find(b"\n", at)
        end = len(buf) if newline < 0 else newline
        pos = end + 1
        stamp, text = split(buf[begin:end])
        when = stamp or _stamp_before(buf, begin) or before
        if query.until is not None and when > query.until:
            return
        if (query.since is None or when >= query.since) and query.keeps(text):
            yield when, LogLine(name, stamp, text)


def _searcher(buf: mmap.mmap, pattern: re.Pattern[bytes]) -> Callable[[int], int]:
    """Where the pattern next occurs in the file from a position (-1: nowhere)."""
    if not pattern.flags & re.IGNORECASE and not _META.search(pattern.pattern):
        literal = pattern.pattern  # a plain word: the bytes' own search is twice as fast
        return lambda pos: buf.find(literal, pos)
    whole = re.compile(pattern.pattern, pattern.flags | re.MULTILINE)

    def search(pos: int) -> int:
        found = whole.search(buf, pos)
        return -1 if found is None else found.start()

    return search


def _mapped(path: Path, end: int | None) -> mmap.mmap | None:
    """The file (its first `end` bytes) mapped for reading; None when missing or empty."""
    if end == 0:
        return None
    try:
        with open(path, "rb") as handle:
            return mmap.mmap(handle.fileno(), end or 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # missing, or empty (nothing to map)
        return None


def read_file(name: str, path: Path, query: Query, end: int | None = None,
              carry: list[bytes] | None = None) -> Iterator[Sorted]:
    """The lines of one file that the query keeps, in file order (its first `end` bytes).

    `carry` holds the last stamp of the file before (the time of lines written without one
    at the head of this file), and is left holding this file's last stamp.
    """
    carry = carry if carry is not None else [b""]
    buf = _mapped(path, end)
    if buf is None:
        return
    with buf:
        before = carry[0]
        carry[0] = _stamp_before(buf, len(buf) + 1) or before
        start = _since_offset(buf, query.since) if query.since is not None else 0
        pattern = query.pattern
        if pattern is not None and not query.invert and not _LINE_ANCHORED.search(
                pattern.pattern.decode(errors="replace")):
            yield from _by_match(name, buf, start, query, _searcher(buf, pattern), before)
        else:
            yield from _by_line(name, buf, start, query, before)


def _tail_offset(buf: mmap.mmap, lines: int) -> int:
    """Where the last `lines` lines of the file begin."""
    pos = len(buf) - 1 if buf[-1:] == b"\n" else len(buf)  # the final newline ends a line
    for _ in range(lines):
        newline = buf.rfind(b"\n", 0, pos)
        if newline < 0:
            return 0
        pos = newline
    return pos + 1


def _tail(name: str, files: list[Path], path: Path, lines: int,
          end: int | None) -> list[Sorted]:
    """The last `lines` lines across a service's files, read from the end (no filter)."""
    found: list[Sorted] = []
    for file in reversed(files):
        if len(found) >= lines:
            break
        buf = _mapped(file, end if file == path else None)
        if buf is None:
            continue
        with buf:
            found = [*_by_line(name, buf, _tail_offset(buf, lines - len(found)), Query()),
                     *found]
    return found[-lines:] if lines else []


def read_service(name: str, path: Path, query: Query, lines: int = -1,
                 end: int | None = None) -> Iterator[Sorted]:
    """A service's lines across its rotated files, oldest first; the last `lines` if >= 0.

    `end`: read the live file only so far (a follower takes over from there).
    """
    files = log_files(path)
    if lines >= 0 and query == Query():
        yield from _tail(name, files, path, lines, end)
        return
    carry = [b""]
    stream: Iterable[Sorted] = (line for file in files for line in read_file(
        name, file, query, end if file == path else None, carry))
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
