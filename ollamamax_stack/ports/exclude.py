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
    """Glob patterns, each read relative to its own base directory.

    A rule made with `named_too` also leaves out a file named on the command line (`--exclude`);
    the others only shape what a directory walk finds (`[checks] exclude`), as ruff's `exclude`
    does without `--force-exclude`.
    """

    rules: tuple[tuple[str, Path, bool], ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str], base: Path, *, named_too: bool = True) -> Exclusions:
        """Patterns relative to `base` (the working directory, or the registry's root)."""
        return cls(tuple((p, base, named_too) for p in patterns))

    def __add__(self, other: Exclusions) -> Exclusions:
        return Exclusions(self.rules + other.rules)

    def excluded(self, path: Path, named: bool = False) -> bool:
        """Whether a rule leaves `path` out (`named`: given as a file, not found by a walk)."""
        for pattern, base, named_too in self.rules:
            if named and not named_too:
                continue
            relative = _relative(path, base)
            if relative is not None and matches(pattern, relative):
                return True
        return False

    def keep(self, paths: Iterable[Path]) -> list[Path]:
        """The paths no rule leaves out."""
        return [p for p in paths if not self.excluded(p)]
