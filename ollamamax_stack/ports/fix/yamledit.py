"""YAML edits through ruamel.yaml's round-trip, so comments, quotes and layout stay as they were."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ollamamax_stack.ports.fix.lines import replace_number

# (mapping indent, sequence indent, dash offset) layouts tried until one reproduces the file.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (3, 3, 1), (4, 4, 0))
_PART = re.compile(r"\$\{[^}]*\}|[^:]+|:")


@dataclass(frozen=True)
class YamlChange:
    """Make `old` on `line` the registry's port: `new` in a value, host/container in `ports:`."""

    line: int
    old: int
    new: int | None
    host: int | None
    container: int | None


@dataclass(frozen=True)
class YamlEdit:
    """One scalar changed: where, and its text before and after."""

    line: int
    before: str
    after: str


def _leaves(node: Any, path: tuple[Any, ...], seen: set[int]) -> Iterator[
        tuple[Any, Any, Any, int, tuple[Any, ...]]]:
    """(parent, key, scalar, 1-based line, path) of every scalar the document itself writes."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if id(node) in seen:  # an alias: its anchor was walked already
        return
    seen.add(id(node))
    if isinstance(node, CommentedMap):
        items: list[tuple[Any, int | None]] = []
        for key in node:
            try:
                items.append((key, node.lc.value(key)[0]))
            except (KeyError, TypeError):
                continue  # a key merged in with `<<:`: its own mapping holds it
    elif isinstance(node, CommentedSeq):
        items = [(index, node.lc.item(index)[0]) for index in range(len(node))]
    else:
        return
    for key, line in items:
        value = node[key]
        if isinstance(value, (CommentedMap, CommentedSeq)):
            yield from _leaves(value, (*path, key), seen)
        elif isinstance(value, (str, int)) and not isinstance(value, bool) and line is not None:
            yield node, key, value, line + 1, (*path, key)


def _compose_entry(text: str, change: YamlChange) -> str:
    """A `ports:` short-syntax entry with its host and container sides put right."""
    parts = _PART.findall(text.split("/", 1)[0])
    proto = text[len("".join(parts)):]
    sides = [i for i, part in enumerate(parts) if part != ":"]
    if not sides:
        return text
    container_at, host_at = sides[-1], (sides[-2] if len(sides) > 1 else None)
    for at, new in ((host_at, change.host), (container_at, change.container)):
        if at is not None and new is not None and "-" not in parts[at].replace(":-", ""):
            parts[at] = replace_number(parts[at], change.old, new)[0]
    return "".join(parts) + proto


def _new_text(text: str, path: tuple[Any, ...], change: YamlChange) -> str:
    if len(path) >= 2 and path[-2] == "ports" and isinstance(path[-1], int):
        return _compose_entry(text, change)
    new = change.new
    if len(path) >= 3 and path[-3] == "ports" and isinstance(path[-2], int):
        new = {"published": change.host, "target": change.container}.get(path[-1], new)
    return replace_number(text, change.old, new)[0] if new is not None else text


def _retyped(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return type(value)(text) if type(value) is not str else text
    return int(text) if type(value) is int else type(value)(int(text))


def _yaml(layout: tuple[int, int, int]) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never fold a long line
    yaml.indent(mapping=layout[0], sequence=layout[1], offset=layout[2])
    return yaml


def _dump(yaml: Any, documents: list[Any]) -> str:
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()


def _round_trip(text: str) -> tuple[Any, list[Any]] | None:
    """A ruamel instance and the documents it loaded, if dumping them reproduces `text`."""
    for layout in _LAYOUTS:
        yaml = _yaml(layout)
        try:
            documents = list(yaml.load_all(text))
            if _dump(yaml, documents) == text:
                return yaml, documents
        except Exception:  # noqa: BLE001 - any ruamel failure means: edit lines instead
            return None
    return None


def _line_edits(text: str, edits: list[YamlEdit]) -> str:
    lines = text.splitlines(keepends=True)
    for edit in edits:
        lines[edit.line - 1] = lines[edit.line - 1].replace(edit.before, edit.after, 1)
    return "".join(lines)


def edit_yaml(text: str, changes: list[YamlChange]) -> tuple[str, list[YamlEdit]]:
    """`text` with each change applied to the scalar on its line that holds the old port."""
    from ruamel.yaml import YAML

    loaded = _round_trip(text)
    yaml, documents = loaded if loaded else (None, list(YAML().load_all(text)))
    by_line: dict[int, list[YamlChange]] = {}
    for change in changes:
        by_line.setdefault(change.line, []).append(change)
    edits: list[YamlEdit] = []
    seen: set[int] = set()
    for document in documents:
        for parent, key, value, line, path in list(_leaves(document, (), seen)):
            current = str(value)
            for change in by_line.get(line, []):
                current = _new_text(current, path, change)
            if current != str(value):
                parent[key] = _retyped(value, current)
                edits.append(YamlEdit(line, str(value), current))
    if not edits:
        return text, []
    if yaml is not None:
        dumped = _dump(yaml, documents)
        old_lines, new_lines = text.splitlines(), dumped.splitlines()
        changed = {n for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=False), 1)
                   if a != b}
        if len(old_lines) == len(new_lines) and changed <= {e.line for e in edits}:
            return dumped, edits
    # The round-trip would touch other lines (a layout ruamel does not keep): edit lines only.
    return _line_edits(text, edits), edits
