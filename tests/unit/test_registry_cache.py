"""The cache of validated registries: same registry as pydantic's, keyed by text, never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry import cache, load_registry
from ollamamax_stack.registry.model import RegistryFile

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config" / "ports.toml"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(directory))
    return directory


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("registry-*.json")) if directory.exists() else []


def test_a_cached_registry_equals_the_validated_one(cache_dir: Path) -> None:
    validated = load_registry(DEFAULT, offset=7, profile="full")
    assert len(entries(cache_dir)) == 1
    cached = load_registry(DEFAULT, offset=7, profile="full")
    assert cached == validated
    inference = cached.services["inference"]
    assert inference.port_map == {"api": 8087, "web": 8088}
    assert inference.readiness.kind == "http" and inference.restart.limit == 5
    assert isinstance(cache.load(DEFAULT.read_text()), RegistryFile)


def test_an_edited_registry_is_validated_again(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text("[services.api]\nport = 13100\nexternal = true\n")
    load_registry(path)
    path.write_text("[services.api]\nport = 70000\nexternal = true\n")
    with pytest.raises(RegistryError, match="port 70000 is out of range"):
        load_registry(path)
    assert len(entries(cache_dir)) == 1  # what failed is not kept


def test_a_broken_or_unwritable_cache_only_costs_time(tmp_path: Path, cache_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    load_registry(DEFAULT)
    entries(cache_dir)[0].write_text('{"services": {"gateway": {"port": "x"')
    assert load_registry(DEFAULT).services["gateway"].port == 13100
    entries(cache_dir)[0].write_text(json.dumps({"services": {"gateway": {"bogus": 1}}}))
    assert load_registry(DEFAULT).services["gateway"].port == 13100
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker / "cache"))
    assert load_registry(DEFAULT).services["gateway"].port == 13100


def test_a_warm_check_imports_neither_pydantic_nor_typer(tmp_path: Path) -> None:
    env = {**os.environ, cache.CACHE_ENV: str(tmp_path / "cache")}
    command = [sys.executable, "-X", "importtime", "-m", "ollamamax_stack", "ports", "check",
               "--no-host"]
    cold = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    assert "| pydantic" in cold.stderr  # the first run validates
    warm = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert warm.returncode == 0 and warm.stdout == cold.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in warm.stderr.splitlines() if line.startswith("import time:")}
    assert {"pydantic", "pydantic_core", "typer", "rich"}.isdisjoint(imported), imported
