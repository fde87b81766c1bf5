"""Revocations in the run dir's SQLite file: shared by every opener, gone once expired."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path

from ollamamax_stack.services.common.sqlite_revocation import (
    SqliteRevocationStore,
    open_revocations,
    revocation_path,
)


def test_two_services_share_revocations_through_the_file(tmp_path: Path) -> None:
    gateway, hub = open_revocations(tmp_path), open_revocations(tmp_path)
    assert gateway.name == hub.name == "sqlite"

    async def run() -> None:
        await gateway.revoke("jti-1", time.time() + 60)
        await gateway.revoke("jti-old", time.time() - 1)  # expired: refused anyway
        assert await hub.is_revoked("jti-1")
        assert not await hub.is_revoked("jti-old") and not await hub.is_revoked("jti-2")
        # A restarted service (a new opener) still knows.
        assert await open_revocations(tmp_path).is_revoked("jti-1")

    asyncio.run(run())
    assert stat.S_IMODE(revocation_path(tmp_path).stat().st_mode) == 0o600


def test_an_unusable_run_dir_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = open_revocations(blocker)  # the run dir is a file: no database can live there
    assert store.name == "memory"

    async def run() -> None:
        await store.revoke("jti", time.time() + 60)
        assert await store.is_revoked("jti")

    asyncio.run(run())


class EveryTokenRevoked:
    """A shared store written by someone else: it says every token is revoked."""

    name = "redis"

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Accept and forget."""

    async def is_revoked(self, jti: str) -> bool:
        """Always: the worst a stranger's store can answer."""
        return True


def test_the_services_own_tokens_are_checked_only_against_the_trusted_store(
        tmp_path: Path) -> None:
    import pytest

    from ollamamax_stack.services.common.apikeys import ApiKey
    from ollamamax_stack.services.common.auth import Authenticator
    from ollamamax_stack.services.common.errors import ApiError

    trusted = open_revocations(tmp_path)
    auth = Authenticator({"sk-a": ApiKey("alice")}, b"s" * 48, "gateway",
                         EveryTokenRevoked(), trusted=trusted)

    async def run() -> None:
        service = await auth.authenticate(auth.service_token())
        assert service.role == "service" and service.subject == "service:gateway"
        user_token, _ = auth.issue("alice")
        with pytest.raises(ApiError, match="revoked"):
            await auth.authenticate(user_token)
        # A revocation in the trusted store still ends a service token.
        assert service.token_id is not None
        await trusted.revoke(service.token_id, time.time() + 60)
        with pytest.raises(ApiError, match="revoked"):
            await auth.authenticate(auth.service_token())

    asyncio.run(run())


def test_a_revocation_the_full_disk_refused_is_still_refused_here(tmp_path: Path) -> None:
    store = open_revocations(tmp_path)
    assert isinstance(store, SqliteRevocationStore)
    other = open_revocations(tmp_path)  # another service of the machine reads the file
    # SQLite's own "database or disk is full": the file may not grow past its current pages.
    with closing(sqlite3.connect(revocation_path(tmp_path))) as peek:
        pages = peek.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")

    async def run() -> None:
        for n in range(10_000):
            jti = f"jti-{n}"
            await store.revoke(jti, time.time() + 60)
            if not await other.is_revoked(jti):  # the file did not take it
                assert await store.is_revoked(jti)  # this service still refuses the token
                return
        raise AssertionError("the database never filled up")

    asyncio.run(run())
