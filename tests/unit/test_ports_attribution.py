"""Whose port is it: a compose service's name is a guess that its image can overrule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.ports.drift import scan
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry

# Named like a compose service, with images: no `compose_names`, so a compose service called
# `postgres` is postgres only by a guess from the name.
REGISTRY = """\
[stack]
drift_files = []

[services.postgres]
port = 5432
scheme = "postgresql"
external = true
images = ["postgres", "bitnami/postgresql"]
"""


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    path = tmp_path / "ports.toml"
    path.write_text(REGISTRY)
    return load_registry(path)


def compose(registry: Registry, tmp_path: Path, service: str,
            ) -> list[tuple[str, str | None, int | None, int | None]]:
    path = tmp_path / "docker-compose.yml"
    path.write_text(f"services:\n{service}")
    return [(f.code, f.service, f.port, f.line) for f in scan(registry, [path]).findings]


def test_a_guessed_name_running_another_product_is_not_the_service(
        registry: Registry, tmp_path: Path) -> None:
    assert compose(registry, tmp_path,
                   "  postgres:\n    image: mysql:8\n    ports: ['3306:3306']\n") == []


def test_a_guessed_name_with_its_own_image_or_none_is_the_service(
        registry: Registry, tmp_path: Path) -> None:
    assert compose(registry, tmp_path,
                   "  postgres:\n    image: postgres:16\n    ports: ['3306:5432']\n") == [
        ("drift", "postgres", 3306, 4)]
    assert compose(registry, tmp_path, "  postgres:\n    ports: ['3306:5432']\n") == [
        ("drift", "postgres", 3306, 3)]
