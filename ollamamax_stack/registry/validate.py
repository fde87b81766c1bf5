"""Validate a parsed TOML document into the model with pydantic (imported only here)."""

from __future__ import annotations

from typing import Any

from ollamamax_stack.registry.model import RegistryFile


def validate_document(data: dict[str, Any]) -> RegistryFile:
    """The validated document; pydantic's ValidationError when it does not fit the model."""
    from pydantic import TypeAdapter

    return TypeAdapter(RegistryFile).validate_python(data)
