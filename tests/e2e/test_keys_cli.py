"""`ollamamax keys` as a user meets it: the key alone on the last line, never listed again,
and one line with a non-zero exit for a bad name, a duplicate or a bad --expires."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "ports.toml"


def keys(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ollamamax_stack", "--config", str(REGISTRY),
                           "--run-dir", str(run_dir), "keys", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def one_line_error(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode != 0, done.stdout
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert done.stderr.startswith("ollamamax: error: ") and "Traceback" not in done.stderr


def test_the_key_is_shown_once_alone_on_the_last_line(tmp_path: Path) -> None:
    created = keys(tmp_path, "create", "alice", "--expires", "30d", "--rate-limit", "60",
                   "--admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert key.startswith("omx_") and " " not in key
    assert "admin key 'alice'" in created.stdout and "60/min" in created.stdout
    listing = keys(tmp_path, "list")
    assert listing.returncode == 0 and key not in listing.stdout
    header, row = listing.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "ROLE"] and "LAST USED" in header
    assert row.split()[:2] == ["alice", "admin"] and "active" in row and "60/min" in row
    revoked = keys(tmp_path, "revoke", "alice")
    assert revoked.returncode == 0 and "revoked key 'alice'" in revoked.stdout
    assert "revoked" in keys(tmp_path, "list").stdout.splitlines()[1]


def test_no_keys_yet_says_how_to_make_one(tmp_path: Path) -> None:
    listing = keys(tmp_path, "list")
    assert listing.returncode == 0 and "ollamamax keys create NAME" in listing.stdout


@pytest.mark.parametrize(("args", "words"), [
    (("revoke", "nobody"), "no key named 'nobody'"),
    (("create", "bad name"), "bad key name 'bad name'"),
    (("create", "x", "--expires", "30x"), "bad --expires '30x'"),
    (("create", "x", "--expires", "soon"), "bad --expires 'soon'"),
    (("create", "x", "--rate-limit", "0"), "bad --rate-limit 0"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path, args: tuple[str, ...],
                                                   words: str) -> None:
    one_line_error(keys(tmp_path, *args), words)


def test_a_duplicate_name_is_one_line_and_keeps_the_first_key(tmp_path: Path) -> None:
    first = keys(tmp_path, "create", "alice")
    assert first.returncode == 0, first.stderr
    one_line_error(keys(tmp_path, "create", "alice"), "a key named 'alice' exists already")
    assert keys(tmp_path, "revoke", "alice").returncode == 0
    one_line_error(keys(tmp_path, "revoke", "alice"), "revoked already")
    assert len(keys(tmp_path, "list").stdout.splitlines()) == 2
