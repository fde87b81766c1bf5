"""Run PostgreSQL: initdb into the run directory on first start, then postgres on its port.

Logins need the stack's generated password (scram-sha-256, `<run dir>/postgres.password`);
the cluster's pg_hba.conf is rewritten at every start, so no `trust` line survives.
"""

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
from ollamamax_stack.registry.environ import password_file
from ollamamax_stack.services.common.secret import ensure_secret

PACKAGE = "postgresql"
USER_ENV = "OLLAMAMAX_POSTGRES_USER"
SUPERUSER = "postgres"
# Unix-socket logins (none by default: no socket directory) by peer, TCP by password only.
HBA = """# Written by ollamamax at every start: passwords (scram-sha-256), never trust.
local   all   all                 peer
host    all   all   all           scram-sha-256
"""


def data_dir(run_dir: Path) -> Path:
    """Where the cluster lives: it survives `down`, so the next `up` finds it."""
    return run_dir / "postgres"


def _run_as(argv: list[str], account: Account | None, cwd: Path,
            stdin: str) -> subprocess.CompletedProcess[str]:
    # The password goes on stdin: a command line is readable by every local user.
    return subprocess.run(
        argv, input=stdin, text=True, stdout=sys.stderr, stderr=sys.stderr, check=False,
        cwd=cwd, user=account.uid if account else None, group=account.gid if account else None,
        extra_groups=[] if account else None)


def initialise(initdb: Path, data: Path, run_dir: Path, account: Account | None,
               password: str) -> None:
    """initdb into a scratch dir renamed into place, so a killed initdb leaves no half cluster."""
    scratch = data.with_name(data.name + ".init")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700, parents=True)
    if account is not None:
        make_reachable(scratch, run_dir, account)
    # initdb reads the password from a file; beside the scratch dir, the account's own, 0600.
    pwfile = scratch.with_name(scratch.name + ".pw")
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    if account is not None:
        os.chown(pwfile, account.uid, account.gid)
    argv = [str(initdb), "-D", str(scratch), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-locale",
            "--no-sync"]
    try:
        result = _run_as(argv, account, scratch, "")
    finally:
        pwfile.unlink()
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise OllamamaxError(f"initdb failed (exit {result.returncode}) for {data}")
    scratch.rename(data)


def _trusting(data: Path) -> bool:
    """Whether the cluster was made by an older stack, with `trust` and no password."""
    hba = data / "pg_hba.conf"
    lines = hba.read_text().splitlines() if hba.is_file() else []
    return any("trust" in line.split("#", 1)[0].split() for line in lines)


def set_password(postgres: Path, data: Path, account: Account | None, password: str) -> None:
    """Give the superuser the stack's password (single-user mode: no login is needed)."""
    sql = f"ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n"
    result = _run_as([str(postgres), "--single", "-D", str(data), "-j", "postgres"], account,
                     data, sql)
    if result.returncode != 0:
        raise OllamamaxError(f"cannot set the password of {SUPERUSER} in {data} "
                             f"(postgres --single exit {result.returncode})")


def write_hba(data: Path, account: Account | None) -> None:
    """Our pg_hba.conf (passwords only), owned by the account postgres runs as."""
    staged = data / ".pg_hba.conf.tmp"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(HBA)
    if account is not None:
        os.chown(staged, account.uid, account.gid)
    os.replace(staged, data / "pg_hba.conf")


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
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = ensure_secret(password_file("postgres", os.environ, run_dir),
                             "PostgreSQL password").decode()
    if not (data / "PG_VERSION").is_file():
        initialise(initdb, data, run_dir, account, password)
    else:
        if account is not None:
            make_reachable(data, run_dir, account)
        if _trusting(data):
            set_password(postgres, data, account, password)
    write_hba(data, account)
    argv = postgres_argv(postgres, data, host, port)
    if account is not None:
        become(account)
    os.chdir(data)
    os.execv(argv[0], argv)
