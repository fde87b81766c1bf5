"""The key store in the `full` profile's PostgreSQL, over psycopg 3 with the generated password."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pg_errors

from ollamamax_stack.keystore.backend import Row
from ollamamax_stack.keystore.model import KeyStoreError

USER = "postgres"  # the superuser initdb made (dependents/postgres.py); its password is ours
DATABASE = "postgres"
LOCK = 0x6F6D785F6B657973  # pg_advisory_xact_lock id of the key store ("omx_keys")


class PostgresBackend:
    """A Backend on one autocommit connection; transactions take the store's advisory lock."""

    kind = "postgresql"
    errors: tuple[type[Exception], ...] = (psycopg.Error,)
    duplicate: tuple[type[Exception], ...] = (pg_errors.UniqueViolation,)

    def __init__(self, url: str, password_file: Path, connect_timeout: float = 3.0) -> None:
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port}"
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise KeyStoreError(f"cannot read the PostgreSQL password file {password_file} "
                                f"(written when the full profile first starts): "
                                f"{exc.strerror}") from None
        try:
            self._db = psycopg.connect(host=parts.hostname, port=parts.port or 5432, user=USER,
                                       password=password, dbname=DATABASE, autocommit=True,
                                       connect_timeout=max(1, int(connect_timeout)),
                                       application_name="ollamamax-keys")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
            raise KeyStoreError(f"cannot open the key store (postgresql {self.where}): "
                                f"{reason}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (`?` becomes psycopg's `%s`); its rows."""
        cursor = self._db.execute(sql.replace("?", "%s").encode(), tuple(params))
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction holding the store's advisory lock until it ends."""
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            yield

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
