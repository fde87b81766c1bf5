"""The stack's API keys and their roles: `$OLLAMAMAX_API_KEYS`, `$OLLAMAMAX_ADMIN_KEYS`, a file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.errors import OllamamaxError

KEYS_ENV = "OLLAMAMAX_API_KEYS"
ADMIN_KEYS_ENV = "OLLAMAMAX_ADMIN_KEYS"
KEYS_FILE_ENV = "OLLAMAMAX_API_KEYS_FILE"
USER, ADMIN = "user", "admin"
ROLES = (USER, ADMIN)


class KeysFileError(OllamamaxError):
    """The API keys file cannot be read or holds a bad line (exit 1)."""


@dataclass(frozen=True)
class ApiKey:
    """What a key stands for: a name for logs and limits, and a role."""

    name: str
    role: str = USER


def _default_name(key: str) -> str:
    return f"key-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _from_list(raw: str, role: str) -> dict[str, ApiKey]:
    return {key: ApiKey(_default_name(key), role)
            for key in (k.strip() for k in raw.split(",")) if key}


def _from_file(path: str) -> dict[str, ApiKey]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise KeysFileError(f"cannot read the API keys file {path} "
                            f"({KEYS_FILE_ENV}): {exc.strerror}") from None
    keys: dict[str, ApiKey] = {}
    # `<key> [<name> [<role>]]` per line, `#` starts a comment: `sk-abc123 alice admin`.
    for number, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) > 3 or (len(parts) == 3 and parts[2] not in ROLES):
            raise KeysFileError(f"{path}:{number}: expected '<key> [<name> [user|admin]]' "
                                f"({KEYS_FILE_ENV})")
        name = parts[1] if len(parts) > 1 else _default_name(parts[0])
        keys[parts[0]] = ApiKey(name, parts[2] if len(parts) == 3 else USER)
    return keys


def read_keys(env: Mapping[str, str]) -> dict[str, ApiKey]:
    """Every API key with its name and role: the lists in the environment, then the file."""
    keys = _from_list(env.get(KEYS_ENV, ""), USER)
    keys.update(_from_list(env.get(ADMIN_KEYS_ENV, ""), ADMIN))
    if env.get(KEYS_FILE_ENV):
        keys.update(_from_file(env[KEYS_FILE_ENV]))
    return keys
