"""Shared fixtures: the project root, the default registry, free offsets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.portbase import free_offset

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "config" / "ports.toml"


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def default_offset() -> int:
    """An offset that makes every port of the default registry free on this machine."""
    from ollamamax_stack.registry import load_registry

    registry = load_registry(REGISTRY)
    return free_offset([p for s in registry.services.values() for p in s.port_map.values()])


@pytest.fixture(autouse=True, scope="session")
def registry_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Validated registries (and those of every `ollamamax` the tests start) go to this run's
    own cache, not the user's home."""
    os.environ.setdefault("OLLAMAMAX_CACHE_DIR", str(tmp_path_factory.mktemp("registry-cache")))
