"""The files `ports check` looks at: named files, and directories walked as git would."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Third-party code checked into a tree (or installed in it) is not the tree's own configuration.
VENDORED = frozenset({"node_modules", "vendor", "bower_components", ".venv", "venv",
                      "site-packages", "__pycache__", ".git"})


def is_vendored(path: Path) -> bool:
    """Whether a relative path lies in third-party code (`node_modules/`, `vendor/`, ...)."""
    return bool(VENDORED & set(path.parts[:-1]))


def _git_files(directory: Path) -> list[Path] | None:
    """Tracked and untracked-but-not-ignored files under a directory of a git work tree."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, "-C", str(directory), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard", "--", "."],
            capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None  # not a work tree
    names = dict.fromkeys(result.stdout.decode("utf-8", "surrogateescape").split("\0"))
    # `--cached` lists files deleted from the work tree too: only what is there is checked.
    return [directory / name for name in names
            if name and not is_vendored(Path(name)) and os.path.lexists(directory / name)]


def _ignored(specs: list[tuple[Path, Any]], path: Path, is_dir: bool) -> bool:
    for base, spec in specs:
        relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        if spec.match_file(relative):
            return True
    return False


def _walk_with_gitignore(directory: Path) -> Iterator[Path]:
    """Every file under a directory outside git, honouring its `.gitignore` files."""
    import pathspec

    specs: list[tuple[Path, Any]] = []
    for current, dirs, files in os.walk(directory):
        here = Path(current)
        specs = [(base, spec) for base, spec in specs if here == base or base in here.parents]
        ignore = here / ".gitignore"
        if ignore.is_file():
            try:
                lines = ignore.read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            specs.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))

        dirs[:] = sorted(d for d in dirs
                         if d not in VENDORED and not _ignored(specs, here / d, True))
        for name in sorted(files):
            if not _ignored(specs, here / name, False):
                yield here / name


def expand(paths: list[Path]) -> list[tuple[Path, bool]]:
    """Each file to check, with whether it was named (a named file must exist)."""
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if str(path) == "-":
            # `git ls-files | ollamamax ports check -`: one path a line on standard input.
            found.extend((Path(line), True) for line in sys.stdin.read().splitlines() if line)
        elif path.is_dir():
            listed = _git_files(path)
            found.extend((item, False) for item in (
                listed if listed is not None else _walk_with_gitignore(path)))
        else:
            found.append((path, True))
    return found
