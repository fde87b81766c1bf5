"""YAML parsed into nodes that keep their line numbers; aliases and merge keys resolved."""

from __future__ import annotations

import re
from typing import Any

from ollamamax_stack.ports.extract import ExtractError

MAX_ALIAS_NODES = 100_000  # nodes copied for aliases: a "billion laughs" file stops here
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])\*[A-Za-z0-9_.-]")
MERGE_KEY = "<<"


def _loader_class() -> Any:
    import yaml

    class AliasLineLoader(yaml.SafeLoader):
        """Composes an alias as a copy of its anchor's node placed at the alias's line."""

        copied = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                return self._relocated(super().compose_node(parent, index), mark, 0)
            return super().compose_node(parent, index)

        def _relocated(self, node: Any, mark: Any, depth: int) -> Any:
            self.copied += 1
            if self.copied > MAX_ALIAS_NODES or depth > 100:
                raise ExtractError("too many or too deeply nested YAML aliases", mark.line + 1)
            if isinstance(node, yaml.ScalarNode):
                return yaml.ScalarNode(node.tag, node.value, mark, mark, node.style)
            if isinstance(node, yaml.SequenceNode):
                return yaml.SequenceNode(node.tag, [self._relocated(n, mark, depth + 1)
                                                    for n in node.value], mark, mark,
                                         node.flow_style)
            return yaml.MappingNode(node.tag, [(self._relocated(k, mark, depth + 1),
                                                self._relocated(v, mark, depth + 1))
                                               for k, v in node.value], mark, mark,
                                    node.flow_style)

    return AliasLineLoader


def compose_documents(text: str) -> list[Any]:
    """Every document of a YAML stream as a node tree; a syntax error becomes an ExtractError."""
    import yaml

    # libyaml is fast but shares an alias's node with its anchor (the anchor's line): only a
    # file with aliases pays for the pure-Python composer that places them at their own line.
    loader = _loader_class() if _ALIAS.search(text) else getattr(yaml, "CSafeLoader",
                                                                  yaml.SafeLoader)
    try:
        return [node for node in yaml.compose_all(text, Loader=loader) if node is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ExtractError(f"invalid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise ExtractError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ExtractError("YAML nested too deeply") from None


def line_of(node: Any) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def mapping(node: Any, depth: int = 0) -> dict[str, Any]:
    """A mapping node's scalar keys to their value nodes, `<<` merges resolved ({} otherwise)."""
    if getattr(node, "id", None) != "mapping":
        return {}
    own: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    for key, value in node.value:
        if getattr(key, "id", None) != "scalar":
            continue
        if key.value == MERGE_KEY and depth < 20:
            sources = [value] if getattr(value, "id", None) == "mapping" else sequence(value)
            for source in sources:
                for name, item in mapping(source, depth + 1).items():
                    merged.setdefault(name, item)
            continue
        own[key.value] = value
    return {**merged, **own}


def sequence(node: Any) -> list[Any]:
    """A sequence node's items ([] for other kinds)."""
    return list(node.value) if getattr(node, "id", None) == "sequence" else []


def scalar(node: Any) -> str | None:
    """A scalar node's text, or None."""
    return str(node.value) if getattr(node, "id", None) == "scalar" else None
