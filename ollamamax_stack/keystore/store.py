"""Create, list and revoke keys; what the services read (all keys, the change counter)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ollamamax_stack.keystore.backend import Backend, Row
from ollamamax_stack.keystore.model import (
    REVOKED,
    KeyInputError,
    KeyStoreError,
    StoredKey,
    check_name,
    digest,
    new_key,
)
from ollamamax_stack.keystore.schema import migrate

COLUMNS = "name, digest, role, created, last_used, expires_at, rate_limit, revoked_at"
BUMP = "UPDATE api_key_changes SET counter = counter + 1 WHERE id = 1"


def _key(row: Row) -> StoredKey:
    name, hashed, role, created, last_used, expires_at, rate_limit, revoked_at = row
    return StoredKey(name=name, digest=hashed, role=role, created=float(created),
                     last_used=None if last_used is None else float(last_used),
                     expires_at=None if expires_at is None else float(expires_at),
                     rate_limit=None if rate_limit is None else int(rate_limit),
                     revoked_at=None if revoked_at is None else float(revoked_at))


class KeyStore:
    """The keys of one stack, on a Backend migrated to the newest schema when opened."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.version = migrate(backend)

    @property
    def where(self) -> str:
        """`sqlite /path/keys.sqlite` or `postgresql 127.0.0.1:5432`: for messages."""
        return f"{self.backend.kind} {self.backend.where}"

    def create(self, name: str, role: str, expires_in: float | None = None,
               rate_limit: int | None = None) -> tuple[str, StoredKey]:
        """A new key named `name`: the key (shown once, never stored) and its record."""
        check_name(name)
        if rate_limit is not None and rate_limit < 1:
            raise KeyInputError(f"bad --rate-limit {rate_limit}: give requests per minute, 1 "
                                "or more")
        key, now = new_key(), time.time()
        record = StoredKey(name=name, digest=digest(key), role=role, created=now,
                           expires_at=None if expires_in is None else now + expires_in,
                           rate_limit=rate_limit)
        try:
            with self.backend.transaction():
                self.backend.execute(
                    f"INSERT INTO api_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.name, record.digest, record.role, record.created, None,
                     record.expires_at, record.rate_limit, None))
                self.backend.execute(BUMP)
        except self.backend.duplicate:
            existing = self.named(name)
            state = f" ({existing.state(now)})" if existing else ""
            raise KeyInputError(f"a key named {name!r} exists already{state} in {self.where}: "
                                "names are never reused, pick another") from None
        return key, record

    def named(self, name: str) -> StoredKey | None:
        """The key called `name`, if any."""
        rows = self.backend.execute(f"SELECT {COLUMNS} FROM api_keys WHERE name = ?", (name,))
        return _key(rows[0]) if rows else None

    def keys(self) -> list[StoredKey]:
        """Every key, revoked and expired ones too, oldest first."""
        return [_key(row) for row in
                self.backend.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY created, name")]

    def revoke(self, name: str) -> StoredKey:
        """Mark `name` revoked (kept for `keys list`); a KeyInputError if there is none."""
        existing = self.named(name)
        if existing is None:
            raise KeyInputError(f"no key named {name!r} in {self.where} (see `ollamamax keys "
                                "list`)")
        if existing.state(time.time()) == REVOKED:
            raise KeyInputError(f"the key {name!r} was revoked already")
        with self.backend.transaction():
            self.backend.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ?",
                                 (time.time(), name))
            self.backend.execute(BUMP)
        revoked = self.named(name)
        assert revoked is not None
        return revoked

    def counter(self) -> int:
        """The change counter: a different value means some key was created or revoked."""
        rows = self.backend.execute("SELECT counter FROM api_key_changes WHERE id = 1")
        if not rows:
            raise KeyStoreError(f"the key store at {self.where} has no change counter")
        return int(rows[0][0])

    def record_use(self, last_used: Mapping[str, float]) -> None:
        """Write each key's last use (a batch; never moves a time backwards)."""
        with self.backend.transaction():
            for name, when in last_used.items():
                self.backend.execute(
                    "UPDATE api_keys SET last_used = ? WHERE name = ? AND "
                    "(last_used IS NULL OR last_used < ?)", (when, name, when))

    def close(self) -> None:
        """Close the database."""
        self.backend.close()
