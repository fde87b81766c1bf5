"""Find the line of a TOML key path in the raw text, so errors can say where."""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = r"(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+)"
_ASSIGN = re.compile(rf"^\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")
_PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_\-]+)")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _PART.finditer(dotted))


def locate(text: str, key_path: tuple[str, ...]) -> int | None:
    """The 1-based line that best matches `key_path` (a table header or an assignment)."""
    best_line: int | None = None
    best_len = 0
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(1))
            full = table
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            full = table + _parts(assign.group(1))
        if full and key_path[: len(full)] == full and len(full) > best_len:
            best_line, best_len = number, len(full)
        # A key inside an inline table on this line: `readiness = { http = ... }`.
        if not header and best_len < len(key_path) and key_path[: len(full)] == full:
            rest = key_path[len(full):]
            if rest and re.search(rf"[{{,]\s*{re.escape(rest[0])}\s*=", line):
                best_line, best_len = number, len(full) + 1
    return best_line
