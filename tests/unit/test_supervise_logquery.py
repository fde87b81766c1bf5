"""Stamped logs read back: stamps per line, --since/--until/--grep against a line-by-line
reading of the same files, and a follower that loses nothing at a rotation."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ollamamax_stack.supervise.logquery import Query, log_files, read
from ollamamax_stack.supervise.logs import Follower, tail
from ollamamax_stack.supervise.logstamp import Stamper, parse, split, stamp

BASE = 1_780_000_000.0


def test_stamper_stamps_each_line_once_across_chunks() -> None:
    stamper = Stamper()
    out = stamper(b"one\ntw", BASE) + stamper(b"o\n\nthree", BASE + 1) + stamper(b"\n", BASE + 2)
    first, second = stamp(BASE), stamp(BASE + 1)
    assert out.split(b"\n") == [first + b" one", first + b" two", second + b" ",
                                second + b" three", b""]
    assert abs(parse(first) - BASE) < 1e-5 and len(first) == 27
    assert split(b"no stamp here") == (None, b"no stamp here")


def test_tail_gives_the_services_text(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(Stamper()(b"x\ny\n", BASE) + b"legacy\n")
    assert tail(log, 2) == ["y", "legacy"]


LINE = st.tuples(st.integers(0, 3), st.sampled_from(
    ["GET /x", "error here", "ok", "an ERROR", "", "needle", "x needle y", "^caret", "é ü"]),
    st.booleans())


def _write(directory: Path, name: str, lines: list[tuple[int, str, bool]]) -> list[
        tuple[bytes | None, bytes]]:
    """Lines spread over rotated files (`name.log.2` oldest); some written without a stamp."""
    written: list[tuple[bytes | None, bytes]] = []
    when = BASE
    chunks: list[bytes] = []
    for step, text, stamped in lines:
        when += step
        mark = stamp(when) if stamped else None
        chunks.append((mark + b" " if mark else b"") + text.encode() + b"\n")
        written.append((mark, text.encode()))
    third = max(1, len(chunks) // 3)
    parts = [chunks[:third], chunks[third:2 * third], chunks[2 * third:]]
    for suffix, part in zip((".2", ".1", ""), parts, strict=True):
        (directory / f"{name}.log{suffix}").write_bytes(b"".join(part))
    return written


def _expected(written: list[tuple[bytes | None, bytes]], query: Query) -> list[bytes]:
    kept, last = [], b""
    for mark, text in written:
        last = mark or last
        if query.since is not None and last < query.since:
            continue
        if query.until is not None and last > query.until:
            break
        if query.keeps(text):
            kept.append(text)
    return kept


@settings(max_examples=150, deadline=None)
@given(st.lists(LINE, max_size=40), st.integers(0, 60), st.integers(0, 80),
       st.sampled_from([None, "needle", "ERROR", "e.r", "^an", "(?i)error", "é", "x|ok$"]),
       st.booleans(), st.booleans(), st.booleans())
def test_read_keeps_exactly_what_a_line_by_line_filter_keeps(
        lines: list[tuple[int, str, bool]], since: int, until: int, grep: str | None,
        invert: bool, use_since: bool, use_until: bool) -> None:
    query = Query(since=stamp(BASE + since) if use_since else None,
                  until=stamp(BASE + until) if use_until else None,
                  pattern=re.compile(grep.encode()) if grep else None,
                  invert=invert and grep is not None)
    with tempfile.TemporaryDirectory() as tmp:
        written = _write(Path(tmp), "a", lines)
        got = [line.text for line in read([("a", Path(tmp) / "a.log")], query)]
        assert got == _expected(written, query)
        if query == Query():
            last = [line.text for line in read([("a", Path(tmp) / "a.log")], query, lines=5)]
            assert last == [text for _, text in written][-5:]


def test_services_interleave_by_time(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(Stamper()(b"a1\n", BASE) + Stamper()(b"a3\n", BASE + 3))
    (tmp_path / "b.log").write_bytes(Stamper()(b"b2\n", BASE + 2) + Stamper()(b"b4\n", BASE + 4))
    merged = read([("a", tmp_path / "a.log"), ("b", tmp_path / "b.log")], Query())
    assert [(line.service, line.text) for line in merged] == [
        ("a", b"a1"), ("b", b"b2"), ("a", b"a3"), ("b", b"b4")]
    assert log_files(tmp_path / "a.log") == [tmp_path / "a.log"]


def _rotate(log: Path, backups: int) -> None:
    """What supervisord's handler does: name.log.N-1 -> N ... name.log -> name.log.1."""
    for index in range(backups - 1, 0, -1):
        older = log.with_name(f"{log.name}.{index}")
        if older.exists():
            os.replace(older, log.with_name(f"{log.name}.{index + 1}"))
    os.replace(log, log.with_name(f"{log.name}.1"))


def test_follower_loses_nothing_at_one_or_two_rotations_between_polls(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"before\n")
    follower = Follower()
    follower.add("a", log)
    with open(log, "ab") as handle:
        handle.write(b"one\n")
    _rotate(log, 3)
    log.write_bytes(b"two\n")
    assert [line.text for line in follower.poll_lines()] == [b"one", b"two"]
    with open(log, "ab") as handle:
        handle.write(b"three\n")
    _rotate(log, 3)
    log.write_bytes(b"four\n")
    _rotate(log, 3)
    log.write_bytes(b"five\npart")
    assert [line.text for line in follower.poll_lines()] == [b"three", b"four", b"five"]
    with open(log, "ab") as handle:
        handle.write(b"ial\n")
    assert follower.poll() == [("a", "partial")]
    follower.close()
