"""One stored API key, how a new one is made, and how it is found again (by its digest)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from ollamamax_stack.errors import OllamamaxError

PREFIX = "omx_"  # says what a leaked string is: an ollamamax key, for scanners and people
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
ACTIVE, REVOKED, EXPIRED = "active", "revoked", "expired"


class KeyStoreError(OllamamaxError):
    """A key store cannot be reached or refuses a change (exit 1)."""


class KeyInputError(OllamamaxError):
    """A bad name, duration or limit given to `keys` (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class StoredKey:
    """A key as the store keeps it: never the key itself, only its sha256."""

    name: str
    digest: str
    role: str
    created: float
    last_used: float | None = None
    expires_at: float | None = None
    rate_limit: int | None = None  # requests per minute; None: the stack's own limit
    revoked_at: float | None = None

    def state(self, now: float) -> str:
        """`active`, `revoked` or `expired` at `now` (epoch seconds)."""
        if self.revoked_at is not None:
            return REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return EXPIRED
        return ACTIVE


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe, with the `omx_` prefix."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """What the store keeps of a key and looks it up by.

    sha256, not a slow password hash: the keys are 256 random bits, so no guess list reaches
    one, and a plain hash lets every service look a key up in a dict in microseconds.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(name: str) -> str:
    """The name, or a KeyInputError saying what a name may hold."""
    if not NAME.fullmatch(name):
        raise KeyInputError(f"bad key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return name


def parse_duration(text: str) -> float:
    """Seconds in `30d`, `12h`, `90m`, `45s`, `2w`; a KeyInputError for anything else."""
    match = re.fullmatch(r"([0-9]+)([smhdw])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise KeyInputError(f"bad --expires {text!r}: give a positive whole number and a unit, "
                            "s, m, h, d or w (e.g. 30d)")
    return float(int(match.group(1)) * UNITS[match.group(2)])
