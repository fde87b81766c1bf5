"""A Finding: one problem `ports check` reports, with where it was found."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem: level, a stable code, a sentence, and the service/port/file/line it concerns."""

    level: Level
    code: str
    message: str
    service: str | None = None
    port: int | None = None
    file: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN §4."""
        return asdict(self)

    @property
    def where(self) -> str:
        """`file:line`, `file`, or empty."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""


def display_path(path: Path) -> str:
    """A path as a user reads it: relative to the working directory when it lies inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)
