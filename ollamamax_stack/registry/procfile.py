"""Parse a Procfile: `name: command` lines, comments and blank lines ignored."""

from __future__ import annotations

import re
from pathlib import Path

from ollamamax_stack.errors import RegistryError

_ENTRY = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$")


def parse_procfile(text: str, source: str) -> dict[str, tuple[str, int]]:
    """Each process name with its command and line number."""
    entries: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENTRY.match(stripped)
        if not match:
            raise RegistryError("not a `name: command` line", file=source, line=number)
        name, command = match.groups()
        if name in entries:
            first = entries[name][1]
            raise RegistryError(f"{name!r} is defined twice (first on line {first})",
                                file=source, line=number)
        entries[name] = (command, number)
    return entries


def read_procfile(path: Path, shown: str) -> dict[str, tuple[str, int]]:
    """Read and parse a Procfile, turning I/O problems into a RegistryError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read Procfile: {exc.__class__.__name__}: "
                            f"{getattr(exc, 'strerror', None) or exc}", file=shown) from None
    return parse_procfile(text, shown)
