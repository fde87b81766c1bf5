"""Exclusions: `--exclude GLOB` from the working directory, `[checks] exclude` from the root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.ports.exclude import Exclusions, matches
from ollamamax_stack.ports.scope import exclusions, extra_files
from ollamamax_stack.registry import load_registry


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("*.env", "deploy/prod.env", True),
    ("node_modules", "web/node_modules/x/.env", True),
    ("deploy/*.yml", "deploy/docker-compose.yml", True),
    ("deploy/*.yml", "other/deploy/docker-compose.yml", False),
    ("deploy", "deploy/nginx.conf", True),
    ("deploy/", "deploy/nginx.conf", True),
    ("./deploy/nginx.conf", "deploy/nginx.conf", True),
    ("**/fixtures/*", "tests/fixtures/a.env", True),
    ("**/a.env", "a.env", True),
    ("*.env", "deploy/prod.env.example", False),
    ("", "a.env", False),
])
def test_glob_semantics(pattern: str, path: str, hit: bool) -> None:
    assert matches(pattern, PurePosixPath(path)) is hit


def test_patterns_are_relative_to_their_base(tmp_path: Path) -> None:
    rules = Exclusions.of(["sub/*.env"], tmp_path) + Exclusions.of(["b.yml"], tmp_path / "x")
    assert rules.excluded(tmp_path / "sub" / "a.env")
    assert not rules.excluded(tmp_path / "other" / "sub" / "a.env")
    assert rules.keep([tmp_path / "b.yml", tmp_path / "x" / "b.yml"]) == [tmp_path / "b.yml"]


def test_checks_table_adds_drift_files_and_excludes(tmp_path: Path) -> None:
    (tmp_path / "ports.toml").write_text(
        '[stack]\ndrift_files = ["a.env", "gen/b.env"]\n\n'
        '[checks]\nexclude = ["gen"]\ndrift_files = ["more.env", "gen/c.env"]\n\n'
        '[services.api]\nport = 13100\nexternal = true\n')
    registry = load_registry(tmp_path / "ports.toml")
    assert registry.checks.exclude == ["gen"]
    excluded = exclusions(registry, ["given*"], tmp_path).excluded
    assert extra_files(registry) == [tmp_path / "more.env", tmp_path / "gen" / "c.env"]
    assert [p.name for p in [tmp_path / "a.env", tmp_path / "gen" / "b.env", tmp_path / "given.env",
                             tmp_path / "more.env"] if not excluded(p)] == ["a.env", "more.env"]


@pytest.mark.parametrize(("table", "key", "line"), [
    ('[checks]\nexclude = "gen"\n', "checks.exclude", 2),
    ('[checks]\n\nexclude = [""]\n', "checks.exclude.0", 3),
    ('[checks]\ndrift_file = ["x"]\n', "checks.drift_file", 2),
])
def test_a_bad_checks_table_names_file_line_and_key(tmp_path: Path, table: str, key: str,
                                                    line: int) -> None:
    (tmp_path / "ports.toml").write_text(table + '\n[services.api]\nport = 1\nexternal = true\n')
    with pytest.raises(RegistryError) as caught:
        load_registry(tmp_path / "ports.toml")
    assert caught.value.key == key and caught.value.line == line, str(caught.value)
