"""Which saved files roll which service (`watch` globs), and which never do; and the debounced
watch over real files (watchfiles on inotify), one batch per save."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ollamamax_stack.registry import load_registry
from ollamamax_stack.supervise.filewatch import WatchRules, changes

STACK = """
[stack]
name = "watched"
root = "."
run_dir = "run"

[services.api]
port = 30201
command = "true"
watch = ["src/**/*.py", "config/api.toml"]

[services.web]
port = 30202
command = "true"
watch = ["src/web/*", "assets/**"]

[services.db]
port = 30203
command = "true"
"""


def _rules(tmp_path: Path) -> WatchRules:
    (tmp_path / "ports.toml").write_text(STACK)
    for directory in ("src/web", "src/api/__pycache__", "config", "run"):
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
    (tmp_path / ".gitignore").write_text("*.generated.py\nbuild/\n")
    (tmp_path / "src" / "web" / ".gitignore").write_text("*.tmp\n")
    return WatchRules.of(load_registry(tmp_path / "ports.toml"))


def test_a_saved_file_rolls_each_service_whose_glob_it_matches(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    assert rules.services_for(tmp_path / "src/api/models/user.py") == ["api"]
    assert rules.services_for(tmp_path / "src/web/page.py") == ["api", "web"]
    assert rules.services_for(tmp_path / "config/api.toml") == ["api"]
    assert rules.services_for(tmp_path / "config/other.toml") == []
    assert rules.services_for(tmp_path / "README.md") == []
    assert "db" not in rules.globs


def test_ignored_files_never_roll(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    for ignored in ("src/api/__pycache__/user.cpython-311.pyc", "src/api/__pycache__/x.py",
                    "src/api/user.generated.py", "src/build/x.py", "src/web/draft.tmp",
                    "src/api/.user.py.swp", "src/api/user.py~", ".git/index", "run/api.log",
                    "src/web/.#page.py"):
        assert rules.services_for(tmp_path / ignored) == [], ignored


def test_only_the_directories_of_the_globs_are_watched(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    # src/web is inside src; assets does not exist yet: the root that will hold it is watched
    assert rules.roots == (tmp_path.resolve(),)
    (tmp_path / "assets").mkdir()
    assert WatchRules.of(load_registry(tmp_path / "ports.toml")).roots == tuple(sorted(
        [(tmp_path / "src").resolve(), (tmp_path / "config").resolve(),
         (tmp_path / "assets").resolve()]))


def test_a_save_is_one_debounced_batch_without_the_ignored_files(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    (tmp_path / "assets").mkdir()
    rules = WatchRules.of(load_registry(tmp_path / "ports.toml"))
    stop = asyncio.Event()

    async def test() -> dict[str, list[Path]]:
        batches = changes(rules, stop)
        first = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.3)  # inotify's watches are set up when the watch starts
        (tmp_path / "src/api/__pycache__/user.cpython-311.pyc").write_bytes(b"\0")
        (tmp_path / "src/web/draft.tmp").write_text("x")
        page = tmp_path / "src/web/page.py"
        page.write_text("one")
        page.write_text("two")  # an editor's save: several writes, one batch
        found = await asyncio.wait_for(first, 10)
        stop.set()
        return found

    found = asyncio.run(test())
    page = (tmp_path / "src/web/page.py").resolve()
    assert {name: {p.resolve() for p in paths} for name, paths in found.items()} == {
        "api": {page}, "web": {page}}
