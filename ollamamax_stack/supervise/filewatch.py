"""Watch and roll: which saved files roll which service, and the debounced watch over them.

Each service's `watch` globs are read from the registry's root (`**` crosses directories).
A path never triggers when the root's or its directory's `.gitignore` ignores it, when it is
in `__pycache__`/`.git`, an editor's swap or backup file, or inside the stack's run dir
(its own logs would roll it forever).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec

from ollamamax_stack.registry.model import Registry

# Changes that are never a save of the service's code: caches, VCS, editors' side files.
ALWAYS_IGNORED = ["__pycache__/", ".git/", "*.pyc", "*.swp", "*.swx", "*~", ".#*", "4913"]
STEP_MS = 100  # a save is taken as done after this long without a further change
DEBOUNCE_MS = 1000  # changes are yielded at least this often while they keep coming


def _static_prefix(pattern: str) -> Path:
    """The directory a glob cannot leave: `src/app` of `src/app/**/*.py`."""
    parts: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


@dataclass(frozen=True)
class WatchRules:
    """The watched globs of every service, the ignore rules, and the directories to watch."""

    root: Path
    run_dir: Path
    globs: dict[str, pathspec.PathSpec[Any]]  # service -> its globs, as absolute gitignore rules
    roots: tuple[Path, ...]  # existing directories that hold every watched glob
    ignored: pathspec.PathSpec[Any]  # ALWAYS_IGNORED and the root's .gitignore, from the root

    @classmethod
    def of(cls, registry: Registry) -> WatchRules:
        """The rules for the active managed services that declare `watch`."""
        root = registry.root.resolve()
        globs: dict[str, pathspec.PathSpec[Any]] = {}
        roots: set[Path] = set()
        for service in registry.managed:
            if not service.watch:
                continue
            absolute = [str(root / g) if not os.path.isabs(g) else g for g in service.watch]
            globs[service.name] = pathspec.GitIgnoreSpec.from_lines(absolute)
            for pattern in absolute:
                base = _static_prefix(pattern)
                while not base.is_dir() and base != base.parent:
                    base = base.parent  # a directory yet to be made: watch what holds it
                roots.add(base)
        # A root inside another is watched through it (inotify watches are recursive here).
        kept = tuple(sorted(r for r in roots if not any(o != r and o in r.parents
                                                         for o in roots)))
        return cls(root, registry.run_dir.resolve(), globs, kept,
                   pathspec.GitIgnoreSpec.from_lines(ALWAYS_IGNORED + _gitignore(root)))

    def ignores(self, path: Path) -> bool:
        """Whether a change of `path` never triggers a roll."""
        if path == self.run_dir or self.run_dir in path.parents:
            return True
        base = self.root if self.root in path.parents else path.parent
        if self.ignored.match_file(path.relative_to(base).as_posix()):
            return True
        beside = _gitignore(path.parent)  # the file's own directory's .gitignore
        return bool(beside) and pathspec.GitIgnoreSpec.from_lines(beside).match_file(path.name)

    def services_for(self, path: Path) -> list[str]:
        """The services a change of `path` rolls (none when it is ignored)."""
        path = path.resolve()
        if self.ignores(path):
            return []
        text = path.as_posix()
        return [name for name, spec in self.globs.items() if spec.match_file(text)]


def _gitignore(directory: Path) -> list[str]:
    try:
        return (directory / ".gitignore").read_text(errors="replace").splitlines()
    except OSError:
        return []


async def changes(rules: WatchRules, stop: asyncio.Event
                  ) -> AsyncIterator[dict[str, list[Path]]]:
    """Debounced saves: service -> the changed paths that roll it, batch by batch."""
    import watchfiles  # only the watcher of a stack started with --watch needs it

    if not rules.roots:
        return
    async for batch in watchfiles.awatch(*rules.roots, stop_event=stop, step=STEP_MS,
                                         debounce=DEBOUNCE_MS, watch_filter=None):
        found: dict[str, list[Path]] = {}
        for _, raw in batch:
            for name in rules.services_for(Path(raw)):
                found.setdefault(name, []).append(Path(raw))
        if found:
            yield found
