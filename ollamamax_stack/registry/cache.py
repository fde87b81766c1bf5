"""Registries validated before, kept as JSON so the next check skips pydantic altogether.

The key is a hash of the registry's text and of the model's source, so an edited registry or a
changed model is validated afresh; only documents that passed validation are stored.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ollamamax_stack import __version__
from ollamamax_stack.registry import constraints, model
from ollamamax_stack.registry.model import RegistryFile

CACHE_ENV = "OLLAMAMAX_CACHE_DIR"
KEEP = 64  # entries; the oldest go first


def cache_dir() -> Path:
    """`$OLLAMAMAX_CACHE_DIR`, else `$XDG_CACHE_HOME/ollamamax`, else `~/.cache/ollamamax`."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ollamamax"


def _key(text: str) -> str:
    digest = hashlib.sha256(__version__.encode())
    for module in (model, constraints):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(text.encode())
    return digest.hexdigest()


Build = Callable[[Any], Any]


@functools.cache
def _builder(kind: Any) -> Build | None:
    """How to turn cached JSON of type `kind` back into the model (None: the JSON as it is)."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        # Fields the dataclass derives itself (init=False) are not given back to it.
        fields = [(f.name, _builder(hints[f.name])) for f in dataclasses.fields(kind) if f.init]
        made = kind

        def build_dataclass(value: Any) -> Any:
            return made(**{name: build(value[name]) if build else value[name]
                           for name, build in fields if name in value})

        return build_dataclass
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = next((b for arg in args if isinstance(arg, type)
                      and dataclasses.is_dataclass(arg) and (b := _builder(arg))), None)
        if inner is None:
            return None
        # An optional table: a dict is the dataclass, anything else (None) stays.
        return lambda value: inner(value) if isinstance(value, dict) else value
    element = _builder(args[-1]) if origin in (dict, list) and args else None
    if element is None:
        return None
    if origin is dict:
        return lambda value: {k: element(v) for k, v in value.items()}
    return lambda value: [element(v) for v in value]


def load(text: str) -> RegistryFile | None:
    """The document validated earlier from exactly this text, if the cache holds it."""
    try:
        data = json.loads((cache_dir() / f"registry-{_key(text)}.json").read_text())
        build = _builder(RegistryFile)
        assert build is not None
        document = build(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return document if isinstance(document, RegistryFile) else None


def store(text: str, document: RegistryFile) -> None:
    """Keep a validated document; a cache that cannot be written is only slower, not an error."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"registry-{_key(text)}.json"
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(dataclasses.asdict(document)))
        os.replace(partial, path)
        entries = sorted(directory.glob("registry-*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        return
