"""Env files as docker compose reads them (python-dotenv): `${VAR}` interpolated, later files win.

A service reads the stack's `env_file`s, then its own; every key remembers the file and line
that gave it, so a value the registry refuses can be pointed at.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry.model import EnvFile, Registry, Service


@dataclass(frozen=True)
class EnvEntry:
    """One key of an env file: its value (interpolated) and where it was written."""

    key: str
    value: str
    file: Path
    line: int


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _single_quoted(original: str) -> bool:
    # compose (and the shell) leave '...' as written; python-dotenv's Binding does not say.
    return original.partition("=")[2].lstrip().startswith("'")


def read_env_file(path: Path, named_by: str = "env_file",
                  lookup: Mapping[str, str] | None = None) -> list[EnvEntry]:
    """Every `KEY=value` of one file, `${VAR}` resolved from `lookup` and the file's earlier keys.

    A line python-dotenv cannot read is an error naming file and line.
    """
    from dotenv.parser import parse_stream
    from dotenv.variables import parse_variables

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(f"env file not found (named by {named_by}; give "
                            "`{path = ..., required = false}` if it may be absent)",
                            file=_shown(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise RegistryError(f"cannot read env file: {reason}", file=_shown(path)) from None
    known: dict[str, str | None] = dict(lookup if lookup is not None else os.environ)
    entries: list[EnvEntry] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise RegistryError("not a KEY=value line", file=_shown(path),
                                line=binding.original.line)
        if binding.key is None:
            continue  # a comment or a blank line
        raw = binding.value or ""
        value = raw if _single_quoted(binding.original.string) else "".join(
            atom.resolve(known) for atom in parse_variables(raw))
        known[binding.key] = value
        entries.append(EnvEntry(binding.key, value, path, binding.original.line))
    return entries


def service_env_files(registry: Registry, service: Service
                      ) -> list[tuple[Path, EnvFile, str]]:
    """(path, spec, registry key) of the files a service reads, the stack's first.

    Paths are resolved against the project root, as the Procfile is.
    """
    return [*((registry.path(f.path), f, "stack.env_file") for f in registry.stack.env_files),
            *((registry.path(f.path), f, f"services.{service.name}.env_file")
              for f in service.env_files)]


def file_environment(registry: Registry, service: Service) -> dict[str, EnvEntry]:
    """The keys a service's env files give it (later files win); a missing required file fails.

    `${VAR}` in a file reads the shell's environment and the keys of the files before it.
    """
    found: dict[str, EnvEntry] = {}
    for path, spec, key in service_env_files(registry, service):
        if not spec.required and not path.exists():
            continue  # compose's `required: false`
        lookup = {**os.environ, **{k: e.value for k, e in found.items()}}
        for entry in read_env_file(path, key, lookup):
            found[entry.key] = entry  # a later file (or a later line) wins
    return found
