"""`.env` files: `KEY=value` lines, optionally `export`ed, quoted, with trailing comments."""

from __future__ import annotations

import re

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import value_refs

_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<value>.*)$")


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else raw[1:]
    # An unquoted value ends at ` #`: the rest is a comment.
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def extract_dotenv(text: str, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """Every port a dotenv file assigns: `PORT=13100`, `OLLAMA_NODES=http://localhost:11434`."""
    refs: list[PortRef] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            refs.extend(value_refs(_unquote(match.group("value")), number, match.group("key"),
                                   names=names))
    return refs


def assignments(text: str) -> dict[str, str]:
    """Every `KEY=value` of a dotenv file, values unquoted (what compose reads from `.env`)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            found[match.group("key")] = _unquote(match.group("value"))
    return found
