"""A Finding: one problem `ports check` reports, with where it was found."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Level = Literal["error", "warning"]
CONTRACT_FIELDS = ("level", "code", "message", "service", "port", "file", "line")


@dataclass(frozen=True)
class Finding:
    """One problem: level, a stable code, a sentence, and the service/port/file/line it concerns.

    `expected` (the registry's port, for a drift) and `column` (1-based, of the port's digits on
    `line`) say what `--fix` would write and where.
    """

    level: Level
    code: str
    message: str
    service: str | None = None
    port: int | None = None
    file: str | None = None
    line: int | None = None
    expected: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape `--format json` prints: CONTRACT_FIELDS (ARCHITECTURE §4)."""
        return {name: getattr(self, name) for name in CONTRACT_FIELDS}

    @property
    def where(self) -> str:
        """`file:line`, `file`, or empty."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""


def display_path(path: Path) -> str:
    """A path as a user reads it: relative to the working directory (`../x` too)."""
    try:
        return os.path.relpath(path.absolute(), Path.cwd())
    except (ValueError, OSError):
        return str(path)
