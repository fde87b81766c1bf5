"""Revoked JWTs in SQLite in the run dir: seen by every service of one machine, kept on restart."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from ollamamax_stack.services.common.revocation import MemoryRevocationStore

log = logging.getLogger("ollamamax.services")
FILE_NAME = "revoked.sqlite"
SCHEMA = "CREATE TABLE IF NOT EXISTS revoked (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL)"


def revocation_path(run_dir: Path) -> Path:
    """Where the stack keeps revoked token ids: beside the JWT secret."""
    return run_dir / FILE_NAME


class SqliteRevocationStore:
    """A RevocationStore on one SQLite file (WAL: readers never wait for the writer)."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        # Revocations this process made, in case the file cannot be written (disk full).
        self._local = MemoryRevocationStore()
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=5, isolation_level=None,
                                   check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise
        path.chmod(0o600)

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuse `jti` until `expires_at` on every service that opens this file."""
        await self._local.revoke(jti, expires_at)
        try:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)",
                                 (jti, expires_at))
                self._db.execute("DELETE FROM revoked WHERE expires_at < ?", (time.time(),))
        except sqlite3.Error as exc:
            log.error("cannot record the revocation in %s: %s (kept in memory)", self.path, exc)

    async def is_revoked(self, jti: str) -> bool:
        """Whether any service revoked `jti` (a primary-key lookup: microseconds)."""
        if await self._local.is_revoked(jti):
            return True
        try:
            with self._lock:
                row = self._db.execute("SELECT 1 FROM revoked WHERE jti = ? AND expires_at > ?",
                                       (jti, time.time())).fetchone()
        except sqlite3.Error as exc:
            log.error("cannot read revocations from %s: %s", self.path, exc)
            return False
        return row is not None

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def open_revocations(run_dir: Path) -> SqliteRevocationStore | MemoryRevocationStore:
    """The run dir's store, or memory (said in the log) when the file cannot be opened."""
    path = revocation_path(run_dir)
    try:
        return SqliteRevocationStore(path)
    except (sqlite3.Error, OSError) as exc:
        log.warning("revocations stay in this process only: cannot open %s: %s", path, exc)
        return MemoryRevocationStore()
