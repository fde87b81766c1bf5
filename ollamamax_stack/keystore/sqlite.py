"""The key store's SQLite file in the run dir (WAL: readers never wait for the writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ollamamax_stack.keystore.backend import Row
from ollamamax_stack.keystore.model import KeyStoreError

FILE_NAME = "keys.sqlite"


def sqlite_path(run_dir: Path) -> Path:
    """Where the default store lives: beside the JWT secret and the revoked tokens."""
    return run_dir / FILE_NAME


class SqliteBackend:
    """A Backend on one SQLite file, readable by this user only."""

    kind = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    duplicate: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            # Autocommit; transactions are explicit (BEGIN IMMEDIATE takes the write lock).
            self._db = sqlite3.connect(path, timeout=5, isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise KeyStoreError(f"cannot open the key store (sqlite {path}): "
                                f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            self._db.close()
            raise KeyStoreError(f"cannot open the key store (sqlite {path}): {exc}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; its rows."""
        return [tuple(row) for row in self._db.execute(sql, tuple(params)).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on an error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the file."""
        self._db.close()
