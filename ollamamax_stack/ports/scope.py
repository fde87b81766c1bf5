"""Which files a check reads beside the registry's drift files, and which it leaves out."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ollamamax_stack.ports.exclude import Exclusions
from ollamamax_stack.registry.model import Registry


def exclusions(registry: Registry, patterns: Iterable[str], cwd: Path) -> Exclusions:
    """`--exclude` patterns (from the working directory) and `[checks] exclude` (from the root,
    for what a directory walk finds: a file named on the command line is still checked)."""
    return Exclusions.of(patterns, cwd) + Exclusions.of(registry.checks.exclude, registry.root,
                                                        named_too=False)


def extra_files(registry: Registry) -> list[Path]:
    """The files `[checks] drift_files` adds to `[stack] drift_files`."""
    return [registry.path(rel) for rel in registry.checks.drift_files]
