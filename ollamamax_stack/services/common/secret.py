"""The stack's secrets (the JWT secret, generated passwords): files created once, mode 0600."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from ollamamax_stack.errors import OllamamaxError

SECRET_FILE_ENV = "OLLAMAMAX_JWT_SECRET_FILE"
SECRET_FILE_NAME = "jwt.secret"


class SecretError(OllamamaxError):
    """The secret file cannot be created or read safely (exit 1)."""


def secret_path(env: Mapping[str, str], run_dir: Path) -> Path:
    """Where the secret lives: `$OLLAMAMAX_JWT_SECRET_FILE`, else `<run dir>/jwt.secret`."""
    given = env.get(SECRET_FILE_ENV)
    return Path(given) if given else run_dir / SECRET_FILE_NAME


def read_secret(path: Path, what: str) -> str:
    """A secret file's value; SecretError (naming `what` and the path) if unreadable or shared."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SecretError(f"the {what} {path} is readable by others (mode {mode:o}): "
                              f"run chmod 600 {path}")
        return path.read_text().strip()
    except OSError as exc:
        raise SecretError(f"cannot read the {what} {path}: {exc.strerror}") from None


def ensure_secret(path: Path, what: str = "JWT secret") -> bytes:
    """The secret in `path`, written first (random, mode 0600) if the file does not exist."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: when several services start at once, exactly one writes the secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SecretError(f"cannot create the {what} {path}: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    value = read_secret(path, what).encode()
    if len(value) < 32:
        # Someone may be writing it right now (O_EXCL won the race elsewhere); read once more.
        value = read_secret(path, what).encode()
    if len(value) < 32:
        raise SecretError(f"the {what} {path} is shorter than 32 bytes: delete it to renew")
    return value
