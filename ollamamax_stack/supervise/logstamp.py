"""The time stamp at the head of every log line: written by supervisord as it reads the output.

A line is `2026-12-03T14:20:01.123456Z text`: UTC, fixed width, so stamps compare as strings
in time order and a reader finds the text at a fixed column. supervisord stamps each line when
it reads the first bytes of it from the service's pipe (services run unbuffered), which is the
line's real time to within a read; a file's mtime would give one time for a whole file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

STAMP_WIDTH = 27  # len("2026-12-03T14:20:01.123456Z")
PREFIX_WIDTH = STAMP_WIDTH + 1  # and the space after it


def stamp(when: float) -> bytes:
    """The stamp of a time (seconds since the epoch)."""
    seconds = int(when)
    micros = int((when - seconds) * 1_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"
            ).encode()


def parse(text: bytes) -> float:
    """The time of a stamp (its first STAMP_WIDTH bytes)."""
    import calendar

    head = time.strptime(text[:19].decode(), "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(head) + int(text[20:26]) / 1_000_000


def is_stamped(line: bytes) -> bool:
    """Whether a line starts with a stamp (older logs, and lines cut by rotation, may not)."""
    return (len(line) >= PREFIX_WIDTH and line[26:28] == b"Z " and line[10:11] == b"T"
            and line[4:5] == b"-" and line[:4].isdigit())


def split(line: bytes) -> tuple[bytes | None, bytes]:
    """(stamp or None, text) of one line."""
    if is_stamped(line):
        return line[:STAMP_WIDTH], line[PREFIX_WIDTH:]
    return None, line


def text_of(line: str) -> str:
    """A line without its stamp (what the service wrote)."""
    if is_stamped(line[:PREFIX_WIDTH].encode(errors="replace")):
        return line[PREFIX_WIDTH:]
    return line


@dataclass
class Stamper:
    """Stamps the lines of one output stream as chunks of it arrive (a line may span chunks)."""

    at_line_start: bool = True

    def __call__(self, data: bytes, when: float | None = None) -> bytes:
        """`data` with a stamp before each line that begins in it."""
        if not data:
            return data
        mark = stamp(time.time() if when is None else when) + b" "
        lines = data.split(b"\n")
        last = lines.pop()  # after the final newline: the start of a line still being written
        out = [mark + line if (i or self.at_line_start) else line for i, line in enumerate(lines)]
        if last:
            out.append(mark + last if (lines or self.at_line_start) else last)
            self.at_line_start = False
        else:
            out.append(b"")
            self.at_line_start = True
        return b"\n".join(out)
