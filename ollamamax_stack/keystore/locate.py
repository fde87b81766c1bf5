"""Which store a stack's keys are in: its PostgreSQL when the profile runs one, else SQLite."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.keystore.backend import Backend
from ollamamax_stack.keystore.model import KeyStoreError
from ollamamax_stack.keystore.sqlite import SqliteBackend, sqlite_path
from ollamamax_stack.keystore.store import KeyStore
from ollamamax_stack.registry.environ import password_file

POSTGRES_URL_ENV = "OLLAMAMAX_POSTGRES_URL"  # set for every service when postgres is in the profile


@dataclass(frozen=True)
class StoreLocation:
    """A SQLite file, or a PostgreSQL URL and the file holding its password."""

    kind: str  # `sqlite` or `postgresql`
    path: Path | None = None
    url: str | None = None
    password_file: Path | None = None

    def describe(self) -> str:
        """`sqlite /run/keys.sqlite` or `postgresql postgresql://127.0.0.1:5432`."""
        return f"{self.kind} {self.path if self.kind == 'sqlite' else self.url}"


def locate(env: Mapping[str, str], run_dir: Path) -> StoreLocation:
    """The store a service (or the CLI, given the same environment) uses."""
    url = env.get(POSTGRES_URL_ENV)
    if url:
        return StoreLocation("postgresql", url=url,
                             password_file=password_file("postgres", env, run_dir))
    return StoreLocation("sqlite", path=sqlite_path(run_dir))


def open_store(location: StoreLocation, connect_timeout: float = 3.0) -> KeyStore:
    """The store at `location`, migrated; a KeyStoreError naming it when it cannot be opened."""
    backend: Backend
    if location.kind == "postgresql":
        from ollamamax_stack.keystore.postgres import PostgresBackend  # psycopg: only here
        assert location.url is not None and location.password_file is not None
        backend = PostgresBackend(location.url, location.password_file, connect_timeout)
    else:
        assert location.path is not None
        backend = SqliteBackend(location.path)
    try:
        return KeyStore(backend)
    except backend.errors as exc:
        backend.close()
        raise KeyStoreError(f"cannot migrate the key store ({location.describe()}): "
                            f"{_first_line(exc)}") from None
    except BaseException:
        backend.close()
        raise


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
