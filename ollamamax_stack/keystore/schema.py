"""The key store's tables and their migrations, applied in order at every open.

SQL common to SQLite and PostgreSQL: SQLite reads `DOUBLE PRECISION` and `BIGINT` by affinity.
A migration is appended, never edited: a store at version N runs only the ones after N.
"""

from __future__ import annotations

from ollamamax_stack.keystore.backend import Backend
from ollamamax_stack.keystore.model import KeyStoreError

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
MIGRATIONS: list[list[str]] = [
    [  # 1: keys by name, found by digest; a counter every change bumps, which services poll
        "CREATE TABLE api_keys (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, "
        "role TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, last_used DOUBLE PRECISION, "
        "expires_at DOUBLE PRECISION, rate_limit INTEGER, revoked_at DOUBLE PRECISION)",
        "CREATE TABLE api_key_changes (id INTEGER PRIMARY KEY, counter BIGINT NOT NULL)",
        "INSERT INTO api_key_changes VALUES (1, 0)",
    ],
]


def current_version(backend: Backend) -> int:
    """The version the store is at (0: empty)."""
    rows = backend.execute("SELECT max(version) FROM schema_version")
    return int(rows[0][0] or 0) if rows else 0


def migrate(backend: Backend, migrations: list[list[str]] = MIGRATIONS) -> int:
    """Bring the store to the newest version, one writer at a time; the version reached."""
    with backend.transaction():
        backend.execute(VERSION_TABLE)
        version = current_version(backend)
        if version > len(migrations):
            raise KeyStoreError(f"the key store at {backend.where} is at schema version "
                                f"{version}, newer than this ollamamax knows "
                                f"({len(migrations)}): upgrade ollamamax")
        for number, statements in enumerate(migrations[version:], version + 1):
            for statement in statements:
                backend.execute(statement)
            backend.execute("INSERT INTO schema_version VALUES (?)", (number,))
    return len(migrations)
