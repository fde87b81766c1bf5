"""YAML parsed into nodes that keep their line numbers (libyaml when available)."""

from __future__ import annotations

from typing import Any

from ollamamax_stack.ports.extract import ExtractError


def compose_documents(text: str) -> list[Any]:
    """Every document of a YAML stream as a node tree; a syntax error becomes an ExtractError."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return [node for node in yaml.compose_all(text, Loader=loader) if node is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ExtractError(f"invalid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise ExtractError(f"invalid YAML: {exc}") from None


def line_of(node: Any) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def mapping(node: Any) -> dict[str, Any]:
    """A mapping node's scalar keys to their value nodes (other kinds of node give {})."""
    if getattr(node, "id", None) != "mapping":
        return {}
    return {key.value: value for key, value in node.value if getattr(key, "id", None) == "scalar"}


def sequence(node: Any) -> list[Any]:
    """A sequence node's items ([] for other kinds)."""
    return list(node.value) if getattr(node, "id", None) == "sequence" else []


def scalar(node: Any) -> str | None:
    """A scalar node's text, or None."""
    return str(node.value) if getattr(node, "id", None) == "scalar" else None
