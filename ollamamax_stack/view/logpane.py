"""The log below `top`'s table: one service's file, its last lines, then what it gains, filtered."""

from __future__ import annotations

import re
from pathlib import Path

from ollamamax_stack.supervise.logs import Follower, tail

BACKLOG = 500  # lines shown when a service is selected or the filter changes


def pattern(text: str) -> re.Pattern[str] | None:
    """The filter as typed: a regular expression (case-insensitive), or literal text when it is
    not one; None for no filter."""
    if not text:
        return None
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


class LogSource:
    """One log file followed from its end, with the last lines kept for a new filter."""

    def __init__(self, path: Path, filter_text: str = "") -> None:
        self.path = path
        self.filter_text = filter_text
        self._pattern = pattern(filter_text)
        self._follower = Follower()
        self._follower.add(path.name, path)

    def backlog(self) -> list[str]:
        """The last lines of the file that pass the filter."""
        return self._kept(tail(self.path, BACKLOG if self._pattern is None else BACKLOG * 20)
                          )[-BACKLOG:]

    def poll(self) -> list[str]:
        """The lines written since the last poll that pass the filter."""
        return self._kept([line for _, line in self._follower.poll()])

    def _kept(self, lines: list[str]) -> list[str]:
        found = self._pattern
        return lines if found is None else [line for line in lines if found.search(line)]
