"""Validate a parsed TOML document into the model with pydantic (imported only here)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from ollamamax_stack.registry.model import RegistryFile

T = TypeVar("T")
DISABLE_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


def validate_document(data: dict[str, Any]) -> RegistryFile:
    """The validated document; pydantic's ValidationError when it does not fit the model."""
    from pydantic import TypeAdapter

    return _without_plugins(lambda: TypeAdapter(RegistryFile)).validate_python(data)


def _without_plugins(make: Callable[[], T]) -> T:
    """Build the registry's validator without looking for pydantic plugins: the lookup reads
    the metadata of every installed distribution (a tenth of a second, the larger part of
    validating a changed registry), and no plugin is meant to watch the registry's own model.
    pydantic caches nothing when plugins are off, so the process's other models still get
    theirs; a user's own PYDANTIC_DISABLE_PLUGINS stays as it was."""
    before = os.environ.get(DISABLE_PLUGINS)
    os.environ[DISABLE_PLUGINS] = "1"
    try:
        return make()
    finally:
        if before is None:
            os.environ.pop(DISABLE_PLUGINS, None)
        else:
            os.environ[DISABLE_PLUGINS] = before
