"""The key store on SQLite: create, list, revoke, migrations; and a service's copy of it."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path

import pytest

from ollamamax_stack.keystore.locate import StoreLocation, locate, open_store
from ollamamax_stack.keystore.model import (
    KeyInputError,
    KeyStoreError,
    digest,
    parse_duration,
)
from ollamamax_stack.keystore.schema import MIGRATIONS, current_version, migrate
from ollamamax_stack.keystore.sqlite import SqliteBackend, sqlite_path
from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.stored_keys import StoredKeys


def store_in(run_dir: Path):  # type: ignore[no-untyped-def]
    return open_store(locate({}, run_dir))


def test_a_created_key_is_stored_only_as_its_digest(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    key, record = store.create("alice", "user", parse_duration("30d"), rate_limit=5)
    assert key.startswith("omx_") and len(key) > 40
    assert record.digest == digest(key) and record.rate_limit == 5
    assert record.expires_at is not None and record.expires_at - record.created == 30 * 86400
    store.close()  # the last close writes the WAL back into the file
    raw = sqlite_path(tmp_path).read_bytes()
    assert key.encode() not in raw and digest(key).encode() in raw
    assert stat.S_IMODE(sqlite_path(tmp_path).stat().st_mode) == 0o600
    assert [k.name for k in store_in(tmp_path).keys()] == ["alice"]


def test_names_are_unique_and_revoking_needs_a_known_name(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    store.create("alice", "user")
    with pytest.raises(KeyInputError, match="'alice' exists already"):
        store.create("alice", "admin")
    with pytest.raises(KeyInputError, match="no key named 'bob'"):
        store.revoke("bob")
    assert store.revoke("alice").state(time.time()) == "revoked"
    with pytest.raises(KeyInputError, match="revoked already"):
        store.revoke("alice")
    with pytest.raises(KeyInputError, match="exists already \\(revoked\\)"):
        store.create("alice", "user")
    with pytest.raises(KeyInputError, match="bad key name"):
        store.create("has space", "user")
    with pytest.raises(KeyInputError, match="--rate-limit"):
        store.create("carol", "user", rate_limit=0)


@pytest.mark.parametrize("text", ["30", "3x", "0d", "-1d", "1.5h", "", "d"])
def test_a_bad_duration_names_the_option(text: str) -> None:
    with pytest.raises(KeyInputError, match="bad --expires"):
        parse_duration(text)


def test_durations() -> None:
    assert [parse_duration(t) for t in ("45s", "90m", "12h", "30d", "2w")] == [
        45, 5400, 43200, 30 * 86400, 14 * 86400]


def test_the_counter_moves_on_changes_not_on_last_use(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    start = store.counter()
    store.create("alice", "user")
    assert store.counter() == start + 1
    store.record_use({"alice": 1000.0})
    store.record_use({"alice": 500.0})  # an older batch of another process: never backwards
    assert store.counter() == start + 1
    assert store.named("alice").last_used == 1000.0  # type: ignore[union-attr]
    store.revoke("alice")
    assert store.counter() == start + 2


def test_migrations_run_once_in_order_and_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    backend = SqliteBackend(path)
    assert migrate(backend) == len(MIGRATIONS) == current_version(backend)
    assert migrate(backend) == len(MIGRATIONS)  # a second start changes nothing
    later = [*MIGRATIONS, ["ALTER TABLE api_keys ADD COLUMN note TEXT"]]
    assert migrate(backend, later) == 2
    assert backend.execute("SELECT note FROM api_keys") == []
    backend.close()
    # This ollamamax knows one migration; the store is at two: refused, with the way out.
    with pytest.raises(KeyStoreError, match="schema version 2, newer than .* upgrade"):
        open_store(StoreLocation("sqlite", path=path))


def test_a_store_that_cannot_be_opened_is_one_line_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(KeyStoreError, match="cannot open the key store \\(sqlite .*file"):
        store_in(blocker)


def test_postgres_is_chosen_when_the_profile_runs_it(tmp_path: Path) -> None:
    env = {"OLLAMAMAX_POSTGRES_URL": "postgresql://127.0.0.1:5432"}
    where = locate(env, tmp_path)
    assert where.kind == "postgresql" and where.password_file == tmp_path / "postgres.password"
    assert locate({}, tmp_path).path == tmp_path / "keys.sqlite"


def authenticator(run_dir: Path, env_keys: dict | None = None  # type: ignore[type-arg]
                  ) -> tuple[Authenticator, StoredKeys]:
    stored = StoredKeys(locate({}, run_dir), last_used_every=3600)
    return Authenticator(env_keys or {}, b"s" * 48, "gateway", stored=stored), stored


def test_a_service_accepts_a_created_key_and_refuses_it_revoked(tmp_path: Path) -> None:
    auth, stored = authenticator(tmp_path)
    cli = store_in(tmp_path)

    async def run() -> None:
        stored.refresh()
        assert not auth.enabled  # nothing stored: auth is off, as without any key
        key, _ = cli.create("alice", "admin", rate_limit=7)
        stored.refresh()
        assert auth.enabled
        principal = await auth.authenticate(key)
        assert (principal.subject, principal.role, principal.rate_limit) == ("alice", "admin", 7)
        token, _ = auth.issue("alice", key="alice")
        assert (await auth.authenticate(token)).key == "alice"
        cli.revoke("alice")
        stored.refresh()
        assert auth.enabled  # the last key revoked does not open the stack
        with pytest.raises(ApiError, match="'alice' has been revoked"):
            await auth.authenticate(key)
        with pytest.raises(ApiError, match="token's API key 'alice' has been revoked"):
            await auth.authenticate(token)
        assert auth.refusal(principal) == "the API key 'alice' has been revoked"

    asyncio.run(run())


def test_an_expired_key_is_refused_at_once_without_a_reload(tmp_path: Path) -> None:
    auth, stored = authenticator(tmp_path)
    key, _ = store_in(tmp_path).create("brief", "user", expires_in=0.3)
    stored.refresh()

    async def run() -> None:
        assert (await auth.authenticate(key)).subject == "brief"
        await asyncio.sleep(0.4)
        with pytest.raises(ApiError, match="'brief' has expired"):
            await auth.authenticate(key)

    asyncio.run(run())


def test_last_use_is_written_in_batches_not_per_request(tmp_path: Path) -> None:
    auth, stored = authenticator(tmp_path)
    cli = store_in(tmp_path)
    key, _ = cli.create("alice", "user")
    stored.refresh()

    async def run() -> None:
        for _ in range(50):
            await auth.authenticate(key)

    asyncio.run(run())
    stored.refresh()  # the batch interval (an hour here) has not passed: nothing written
    assert cli.named("alice").last_used is None  # type: ignore[union-attr]
    stored.flush()
    used = cli.named("alice").last_used  # type: ignore[union-attr]
    assert used is not None and time.time() - used < 10


def test_the_store_unreadable_keeps_auth_closed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    auth, stored = authenticator(blocker)
    with pytest.raises(KeyStoreError):
        stored.refresh()
    assert auth.enabled  # never read: unknown is closed

    async def run() -> None:
        with pytest.raises(ApiError, match="missing credentials"):
            await auth.authenticate(None)
        with pytest.raises(ApiError, match="key store \\(sqlite .*\\) cannot be read") as raised:
            await auth.authenticate("omx_maybe-in-the-store")
        assert raised.value.status == 503

    asyncio.run(run())


def test_a_hash_of_another_stores_format_is_not_a_key(tmp_path: Path) -> None:
    auth, stored = authenticator(tmp_path)
    store_in(tmp_path).create("alice", "user")
    stored.refresh()
    with closing(sqlite3.connect(sqlite_path(tmp_path))) as db:
        hashed = db.execute("SELECT digest FROM api_keys").fetchone()[0]

    async def run() -> None:
        with pytest.raises(ApiError, match="invalid API key"):
            await auth.authenticate(hashed)  # the stored digest itself opens nothing

    asyncio.run(run())
