"""What the key store needs of a database: statements, an exclusive transaction, its errors."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = tuple[Any, ...]


class Backend(Protocol):
    """One connection to SQLite or PostgreSQL, used by one thread at a time."""

    kind: str  # `sqlite` or `postgresql`
    where: str  # the file or host:port, for messages
    errors: tuple[type[Exception], ...]  # what a failing database raises
    duplicate: tuple[type[Exception], ...]  # what a unique-key violation raises

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (`?` placeholders); the rows it returned."""

    def transaction(self) -> AbstractContextManager[None]:
        """A transaction no other writer runs beside (migrations, counter bumps)."""

    def close(self) -> None:
        """Close the connection."""
