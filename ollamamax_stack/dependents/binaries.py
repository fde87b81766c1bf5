"""Find a dependent's program, or say which Debian package provides it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ollamamax_stack.dependents import UnavailableError

POSTGRES_LIB = Path("/usr/lib/postgresql")


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.name)) or (0,)


def search_path() -> list[Path]:
    """Where a program may live beyond $PATH: Debian keeps PostgreSQL's in a versioned dir."""
    if not POSTGRES_LIB.is_dir():
        return []
    return [v / "bin" for v in sorted(POSTGRES_LIB.iterdir(), key=_version_key, reverse=True)]


def find_program(program: str, package: str) -> Path:
    """The program's absolute path; an UnavailableError naming the Debian package if missing."""
    found = shutil.which(program)
    if found:
        return Path(found)
    for directory in search_path():
        candidate = directory / program
        if candidate.is_file():
            return candidate
    raise UnavailableError(f"{program} is not installed; it comes with the Debian package "
                           f"{package} (apt-get install {package})")


def program_dir(program: str, package: str) -> Path:
    """The directory of a program, for its siblings (initdb beside postgres)."""
    return find_program(program, package).resolve().parent
