"""Whose port is it: a compose service's name is a guess that its image can overrule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.ports.attribution import Attribution, ServiceIndex, image_name
from ollamamax_stack.ports.drift import scan
from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry, Service

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


# What each port reference (as the extractors give it) is attributed to, and the words that
# end up in the finding ("... but <how> gives it 9000").
INDEX = """\
[stack]
drift_files = []

[services.gateway]
port = 13100
external = true
env_keys = ["GATEWAY_PORT"]
compose_names = ["ollamamax-api"]
images = ["ollamamax/gateway"]
config_files = [".env"]

[services.inference]
ports = { api = 8080, web = 8081 }
external = true
env_keys = { api = ["GO_API_PORT"], web = ["WEB_PORT"] }
config_files = ["backend/main.go"]

[services.cache]
port = 6379
scheme = "redis"
external = true
images = ["org/team/redis"]

[services.maria]
port = 3306
external = true
"""


@pytest.fixture
def index(tmp_path: Path) -> ServiceIndex:
    (tmp_path / "reg").mkdir()
    path = tmp_path / "reg" / "ports.toml"
    path.write_text(INDEX)
    return ServiceIndex(load_registry(path))


def service(index: ServiceIndex, name: str) -> Service:
    return index.registry.services[name]


@pytest.mark.parametrize(("kind", "how", "loose"), [
    ("listen-addr", "a listen address in a file of gateway", True),
    ("listen", "a listen in a file of gateway", False),
    ("default", "a default port in a file of gateway", False),
    ("expose", "EXPOSE in a file of gateway", False),
    ("upstream", "upstream in a file of gateway", False),
])
def test_a_files_own_port_says_what_made_it_the_files_service(
        index: ServiceIndex, kind: str, how: str, loose: bool) -> None:
    gateway = service(index, "gateway")
    assert index.attribute(PortRef(9000, 1, kind, own=True), gateway) == Attribution(
        gateway, None, how, loose=loose)


def test_a_generic_key_is_the_port_it_names_of_the_compose_entry_or_file(
        index: ServiceIndex) -> None:
    inference = service(index, "inference")
    assert index.attribute(PortRef(9000, 1, "env", ("PORT_WEB",), owner="inference", own=True),
                           None) == Attribution(
        inference, "web", "PORT_WEB of compose service inference")
    assert index.attribute(PortRef(9000, 1, "env", ("PORT_WEB",)), inference) == Attribution(
        inference, "web", "PORT_WEB in a file of inference")
    # An enclosing key before the generic one (`SERVER` > `PORT`) does not hide it.
    assert index.attribute(PortRef(9000, 1, "env", ("SERVER", "PORT")), inference) == (
        Attribution(inference, None, "PORT in a file of inference"))
    # ... and the compose entry's image can say it is another product.
    assert index.attribute(PortRef(9000, 1, "env", ("PORT",), owner="inference", own=True,
                                   image="mysql:8"), None) is None


@pytest.mark.parametrize("kind", ["env", "default", "assign"])
def test_a_key_the_registry_does_not_know_is_nobodys_even_in_a_services_file(
        index: ServiceIndex, kind: str) -> None:
    assert index.attribute(PortRef(9090, 1, kind, ("METRICS_PORT",), own=True),
                           service(index, "gateway")) is None


def test_a_scrape_targets_host_counts_only_in_a_file_the_registry_names(
        index: ServiceIndex) -> None:
    target = PortRef(6379, 1, "target", owner="cache")
    assert index.attribute(target, None) is None
    assert index.attribute(target, None, named=True) == Attribution(
        service(index, "cache"), None, "host cache")


def test_a_urls_host_is_its_service_if_scheme_and_image_agree(index: ServiceIndex) -> None:
    cache = service(index, "cache")
    for scheme in ("redis", "REDIS+sentinel", "redis+tls+x", "rediss"):
        assert index.attribute(PortRef(6380, 1, "url", owner="cache", scheme=scheme),
                               None) == Attribution(cache, None, "host cache"), scheme
    for scheme in ("postgresql", "mysql+redis"):
        assert index.attribute(PortRef(6380, 1, "url", owner="cache", scheme=scheme),
                               None) is None, scheme
    assert index.attribute(PortRef(8080, 1, "url", owner="inference", image="mysql:8"),
                           None) is None


def test_a_stated_compose_name_with_underscores_is_its_service_whatever_unknown_image(
        index: ServiceIndex) -> None:
    gateway = service(index, "gateway")
    assert index.compose_service("ollamamax_api", "ollamamax/frontdoor") == (
        gateway, "compose service ollamamax_api")
    # The product names in an image's path before its last name say nothing (`nginx-builds`).
    assert index.compose_service("ollamamax-api", "org/nginx-builds/api:1") == (
        gateway, "compose service ollamamax-api")
    assert index.compose_service("ollamamax-api", "nginx:1") is None


def test_a_guessed_compose_name_needs_an_image_named_like_the_services(
        index: ServiceIndex) -> None:
    cache = service(index, "cache")
    # `org/team/redis` is the registry's image: a plain `redis` is named like it.
    assert index.compose_service("cache", "redis:7") == (cache, "compose service cache")
    assert index.compose_service("cache", "acme/kv:1") is None
    assert index.compose_service("cache", "acme/redis-labs/kv:1") is None  # by its last name
    assert index.compose_service("cache", "mariadb:11") is None
    # No images in the registry: only a known product unlike the name says no (`mariadb`
    # contains `maria`, so it may be maria).
    assert index.compose_service("maria", "mariadb:11") == (
        service(index, "maria"), "compose service maria")
    assert index.compose_service("maria", "postgres:16") is None


def test_a_bare_config_file_is_the_services_at_the_top_of_the_registry_or_the_checked_tree(
        index: ServiceIndex, tmp_path: Path) -> None:
    gateway = service(index, "gateway")
    elsewhere = tmp_path / "tree" / ".env"
    assert index.context(tmp_path / "reg" / ".env") == gateway
    assert index.context(tmp_path / "reg" / "sub" / ".env") is None
    assert index.context(elsewhere) is None
    assert index.context(elsewhere, ".env") == gateway
    assert index.context(elsewhere, "tree/.env") is None
    assert index.context(tmp_path / "x" / "backend" / "main.go") == service(index, "inference")
    assert index.named(elsewhere, ".env")
    assert not index.named(elsewhere, "tree/.env")
