"""Paths `ports check` leaves out: `--exclude GLOB` and the registry's `[checks] exclude`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath


def _relative(path: Path, base: Path) -> PurePosixPath | None:
    try:
        return PurePosixPath(path.resolve().relative_to(base.resolve()).as_posix())
    except ValueError:
        return None


def matches(pattern: str, relative: PurePosixPath) -> bool:
    """gitignore-like: a pattern without `/` matches any component, one with `/` the path from
    its base (or a directory above the file); `*` and `**` cross directories."""
    pattern = pattern.strip().rstrip("/")
    if not pattern:
        return False
    if "/" not in pattern:
        return any(fnmatchcase(part, pattern) for part in relative.parts)
    pattern = pattern.removeprefix("./").lstrip("/")
    candidates = [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [
        pattern]
    text = relative.as_posix()
    return any(fnmatchcase(text, p) or fnmatchcase(text, p + "/*") for p in candidates)


@dataclass(frozen=True)
class Exclusions:
    """Glob patterns, each read relative to its own base directory."""

    rules: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str], base: Path) -> Exclusions:
        """Patterns relative to `base` (the working directory, or the registry's root)."""
        return cls(tuple((p, base) for p in patterns))

    def __add__(self, other: Exclusions) -> Exclusions:
        return Exclusions(self.rules + other.rules)

    def excluded(self, path: Path) -> bool:
        """Whether a rule leaves `path` out."""
        for pattern, base in self.rules:
            relative = _relative(path, base)
            if relative is not None and matches(pattern, relative):
                return True
        return False

    def keep(self, paths: Iterable[Path]) -> list[Path]:
        """The paths no rule leaves out."""
        return [p for p in paths if not self.excluded(p)]
