"""Whose port is it: a compose service's name is a guess that its image can overrule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.ports.attribution import image_name
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


@pytest.mark.parametrize(("image", "name"), [
    ("redis", "redis"),
    (" docker.io/library/redis:7-alpine@sha256:0123 ", "redis"),
    ("library/redis", "redis"),
    ("library", "library"),
    ("Grafana/Grafana:10.2.0", "grafana/grafana"),
    ("registry.example:5000/team/app:1", "team/app"),
    ("localhost:5000/app", "app"),
    ("localhost/app", "app"),
    ("localhost", "localhost"),
    ("ghcr.io/org/img:tag", "org/img"),
    ("a:b/c", "c"),
    ("team/app@sha256:1@2", "team/app"),
    ("app:1:2", "app"),
    ("localhost:5000/library/redis", "redis"),
])
def test_image_names_drop_registry_library_tag_and_digest(image: str, name: str) -> None:
    assert image_name(image) == name


NAMED = """\
[stack]
drift_files = []

[services.inference]
ports = { api = 8080, web = 8081 }
external = true
env_keys = { api = ["GO_API_PORT"], web = ["WEB_PORT"] }
images = ["ollamamax/inference"]
config_files = ["backend/main.go"]

[services.postgres]
port = 5432
scheme = "postgresql"
external = true
env_keys = ["DATABASE_URL"]
images = ["postgres"]
"""


def messages(tmp_path: Path, name: str, text: str) -> list[tuple[str, int | None, str]]:
    (tmp_path / "ports.toml").write_text(NAMED)
    registry = load_registry(tmp_path / "ports.toml")
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return [(f.code, f.port, f.message) for f in scan(registry, [path]).findings]


def test_findings_say_what_made_the_port_a_services(tmp_path: Path) -> None:
    assert messages(tmp_path, "b/docker-compose.yml",
                    "services:\n  inference:\n    image: registry.example:5000/ollamamax/"
                    "inference:1\n    ports: ['9000:8080']\n") == [
        ("drift", 9000, "inference has port 8080/8081 in the registry, but compose service "
                        "inference (image registry.example:5000/ollamamax/inference:1) gives "
                        "it 9000")]
    assert messages(tmp_path, ".env", "DATABASE_URL=mysql://db:3306/x\nGO_API_PORT=9000\n"
                                      "DATABASE_URL=postgres://db:5433/x\n") == [
        ("drift", 9000, "inference (api) has port 8080 in the registry, but GO_API_PORT gives "
                        "it 9000"),
        ("drift", 5433, "postgres has port 5432 inside its container in the registry, but "
                        "DATABASE_URL gives it 5433")]  # `db`: a container's name
    assert messages(tmp_path, "backend/main.go",
                    'package main\nimport "os"\nfunc main() { port := os.Getenv("PORT_WEB");'
                    ' if port == "" { port = "9002" } }\n') == [
        ("drift", 9002, "inference has port 8080/8081 in the registry, but port in a file of "
                        "inference gives it 9002")]
