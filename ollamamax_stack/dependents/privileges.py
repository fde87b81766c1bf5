"""Run a dependent as a dedicated user when we are root (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.dependents import UnavailableError
from ollamamax_stack.errors import OllamamaxError

# The run dir's mode before a dependent's user was let in: `down` puts it back.
MODE_FILE = "run-dir.mode"


@dataclass(frozen=True)
class Account:
    """The user a dependent runs as."""

    name: str
    uid: int
    gid: int
    home: str


def account_for(default_user: str, env_key: str) -> Account | None:
    """The account to drop to when root (`$env_key` or `default_user`); None when not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(env_key, default_user)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UnavailableError(f"running as root needs a user {name!r} to drop to; the Debian "
                               f"package creates it, or set {env_key} to another user") from None
    return Account(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def become(account: Account) -> None:
    """Drop to `account` for good, before exec."""
    os.setgroups([account.gid])
    os.setgid(account.gid)
    os.setuid(account.uid)
    os.environ.update(HOME=account.home, USER=account.name, LOGNAME=account.name)


def _can_search(path: Path, account: Account) -> bool:
    info = path.stat()
    if info.st_uid == account.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == account.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def make_reachable(directory: Path, run_dir: Path, account: Account) -> None:
    """Let `account` reach `directory`: search permission on the run dir, else name the blocker."""
    for parent in reversed(directory.parents):
        if _can_search(parent, account):
            continue
        if parent == run_dir:
            # Search (x) only, not read: the account can reach its own directory, list nothing.
            mode = stat.S_IMODE(parent.stat().st_mode)
            record = run_dir / MODE_FILE
            if not record.exists():
                record.write_text(f"{mode:o}\n")
            parent.chmod(mode | stat.S_IXOTH)
            continue
        raise OllamamaxError(f"{parent}: user {account.name} cannot enter this directory, so "
                             f"it cannot reach {directory}; use a run directory it can reach")
    os.chown(directory, account.uid, account.gid)


def restore_run_dir(run_dir: Path) -> None:
    """Give the run dir back the mode it had before a dependent's user was let in."""
    record = run_dir / MODE_FILE
    try:
        mode = int(record.read_text().strip(), 8)
        run_dir.chmod(mode)
        record.unlink()
    except (OSError, ValueError):
        pass  # nothing recorded (never opened), or the run dir is gone: nothing to restore
