"""Run PostgreSQL: initdb into the run directory on first start, then postgres on its port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from ollamamax_stack.dependents.binaries import find_program
from ollamamax_stack.dependents.privileges import Account, account_for, become, make_reachable
from ollamamax_stack.errors import OllamamaxError

PACKAGE = "postgresql"
USER_ENV = "OLLAMAMAX_POSTGRES_USER"
SUPERUSER = "postgres"


def data_dir(run_dir: Path) -> Path:
    """Where the cluster lives: it survives `down`, so the next `up` finds it."""
    return run_dir / "postgres"


def initialise(initdb: Path, data: Path, run_dir: Path, account: Account | None) -> None:
    """initdb into a scratch dir renamed into place, so a killed initdb leaves no half cluster."""
    scratch = data.with_name(data.name + ".init")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700, parents=True)
    if account is not None:
        make_reachable(scratch, run_dir, account)
    argv = [str(initdb), "-D", str(scratch), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
            "--no-locale", "--no-sync"]
    result = subprocess.run(
        argv, stdout=sys.stderr, stderr=sys.stderr, check=False, cwd=scratch,
        user=account.uid if account else None, group=account.gid if account else None,
        extra_groups=[] if account else None)
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise OllamamaxError(f"initdb failed (exit {result.returncode}) for {data}")
    scratch.rename(data)


def postgres_argv(postgres: Path, data: Path, host: str, port: int) -> list[str]:
    """postgres on the registry's host and port; no Unix socket (its path would be too long)."""
    return [str(postgres), "-D", str(data), "-p", str(port), "-c", f"listen_addresses={host}",
            "-c", "unix_socket_directories=", "-c", "logging_collector=off"]


def launch_postgres(host: str, port: int, run_dir: Path) -> NoReturn:
    """Initialise on first start, drop root for the `postgres` user, exec postgres."""
    postgres = find_program("postgres", PACKAGE)
    initdb = postgres.resolve().parent / "initdb"
    if not initdb.is_file():
        initdb = find_program("initdb", PACKAGE)
    account = account_for(SUPERUSER, USER_ENV)
    data = data_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").is_file():
        initialise(initdb, data, run_dir, account)
    elif account is not None:
        make_reachable(data, run_dir, account)
    argv = postgres_argv(postgres, data, host, port)
    if account is not None:
        become(account)
    os.chdir(data)
    os.execv(argv[0], argv)
