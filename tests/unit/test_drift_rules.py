"""Drift rules on a small registry: attribution, drift, conflicts, unregistered, offsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.ports.drift import check_drift
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry

REGISTRY = """\
[stack]
drift_files = []

[services.api]
port = 13100
external = true
env_keys = ["PORT", "API_PORT"]
compose_names = ["ollamamax-api"]
config_files = ["src/server.js"]
endpoints = { api = "/v1", ws = "/chat", health = "/health" }
cors = ["http://localhost:3000"]

[services.hub]
port = 13101
external = true
env_keys = ["WS_PORT"]
config_files = ["api-server/server.js"]
endpoints = { ws = "/chat", health = "/health" }

[services.backend]
ports = { api = 8080, web = 8081 }
external = true
env_keys = { api = ["GO_API_PORT"], web = ["WEB_PORT"] }
endpoints = { api = "/api/v1" }

[services.grafana]
port = 3001
container_port = 3000
external = true
compose_names = ["grafana"]
"""


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    path = tmp_path / "ports.toml"
    path.write_text(REGISTRY)
    return load_registry(path)


def drift(registry: Registry, tmp_path: Path, name: str, text: str,
          ) -> list[tuple[str, str | None, int | None, int | None]]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return [(f.code, f.service, f.port, f.line) for f in check_drift(registry, [path])]


def test_agreeing_files_have_no_findings(registry: Registry, tmp_path: Path) -> None:
    assert drift(registry, tmp_path, ".env",
                 "PORT=13100\nWS_PORT=13101\nGO_API_PORT=8080\nWEB_PORT=8081\n"
                 "ORIGIN=http://localhost:3000\n") == []


def test_a_named_port_must_match_its_own_port(registry: Registry, tmp_path: Path) -> None:
    assert drift(registry, tmp_path, ".env", "GO_API_PORT=8081\n") == [
        ("drift", "backend", 8081, 1)]


def test_port_in_a_service_file_means_that_service(registry: Registry, tmp_path: Path) -> None:
    assert drift(registry, tmp_path, "checkout/api-server/server.js",
                 "const PORT = process.env.PORT || 13101;\n") == []
    # Drift for the file's service, and a collision: 13101 is the hub's.
    assert drift(registry, tmp_path, "checkout/src/server.js",
                 "const PORT = process.env.PORT || 13101;\n") == [
        ("drift", "api", 13101, 1), ("collision", "hub", 13101, 1)]
    # The same line in a file the registry does not name: nobody's server, nothing to say.
    assert drift(registry, tmp_path, "checkout/tools/server.js",
                 "const PORT = process.env.PORT || 13000;\n") == []


def test_unknown_port_keys_are_not_drift(registry: Registry, tmp_path: Path) -> None:
    assert drift(registry, tmp_path, "src/server.js",
                 "const m = process.env.METRICS_PORT || 9464;\n") == [
        ("unregistered", None, 9464, 1)]  # a file the registry names: its unknown port is asked
    assert drift(registry, tmp_path, "lib/metrics.js",
                 "const m = process.env.METRICS_PORT || 9464;\n") == []


def test_a_url_path_is_no_evidence_but_a_registry_key_is(registry: Registry,
                                                         tmp_path: Path) -> None:
    assert drift(registry, tmp_path, "client.ts",
                 "a = 'http://localhost:13000/v1/models'\nb = 'ws://localhost:13000/chat'\n"
                 "const API_PORT = 13000;\n") == [("drift", "api", 13000, 3)]


def test_container_ports_are_compared_inside_the_container(registry: Registry,
                                                          tmp_path: Path) -> None:
    assert drift(registry, tmp_path, "compose.yml",
                 "services:\n  grafana:\n    ports: ['3001:3000']\n") == []
    assert drift(registry, tmp_path, "compose2.yml",
                 "services:\n  grafana:\n    ports: ['3001:3001']\n") == [
        ("drift", "grafana", 3001, 3)]


def test_two_services_on_one_port_conflict_in_one_env_not_across_env_files(
        registry: Registry, tmp_path: Path) -> None:
    assert ("conflict", "hub", 13100, 2) in drift(registry, tmp_path, ".env",
                                                  "API_PORT=13100\nWS_PORT=13100\n")
    first = tmp_path / "a.env"
    first.write_text("API_PORT=13000\n")
    second = tmp_path / "b.env"
    second.write_text("\nWS_PORT=13000\n")
    assert [f.code for f in check_drift(registry, [first, second])] == ["drift", "drift"]


def test_upstream_names_are_no_evidence_server_hosts_are(registry: Registry,
                                                         tmp_path: Path) -> None:
    conf = ("upstream api {\n  server 127.0.0.1:13100;\n  server 127.0.0.1:13101 backup;\n"
            "  server 127.0.0.1:13999;\n}\nupstream ws {\n  server hub:13999;\n}\n")
    assert drift(registry, tmp_path, "nginx.conf", conf) == [("drift", "hub", 13999, 7)]


def test_the_ignore_pragma_skips_a_line(registry: Registry, tmp_path: Path) -> None:
    assert drift(registry, tmp_path, "nginx.conf",
                 "server {\n  listen 13101;  # ollamamax: ignore\n  listen 8080;\n}\n") == [
        ("collision", "backend", 8080, 3)]


def test_offset_files_agree_with_the_shifted_registry(tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(REGISTRY)
    shifted = load_registry(path, offset=100)
    assert drift(shifted, tmp_path, ".env", "PORT=13200\nGO_API_PORT=8180\n") == []
    assert drift(shifted, tmp_path, "compose.yml",
                 "services:\n  ollamamax-api:\n    ports: ['13200:13100']\n") == []
    assert drift(shifted, tmp_path, "old.env", "API_PORT=13100\n") == [
        ("drift", "api", 13100, 1)]


def default_registry(tmp_path: Path) -> Registry:
    """The project's registry without its own drift files."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "config" / "ports.toml").read_text()
    text = text.replace('root = ".."', f'root = "{root}"')
    path = tmp_path / "ports.toml"
    path.write_text(text)
    return load_registry(path)


def test_an_explicit_compose_name_is_its_service_whatever_unknown_image_it_runs(
        tmp_path: Path) -> None:
    registry = default_registry(tmp_path)
    # The port document's compose shape: `ollamamax-api` is the gateway's compose name.
    assert drift(registry, tmp_path, "compose.yml",
                 "services:\n  ollamamax-api:\n    image: ollamamax/api\n"
                 "    ports: ['13100:13100']\n") == []
    assert drift(registry, tmp_path, "drifted.yml",
                 "services:\n  ollamamax-api:\n    image: ollamamax/api\n"
                 "    ports: ['13000:13100']\n") == [("drift", "gateway", 13000, 4)]


def test_an_explicit_compose_name_running_another_services_image_is_that_service(
        tmp_path: Path) -> None:
    registry = default_registry(tmp_path)
    assert drift(registry, tmp_path, "compose.yml",
                 "services:\n  ollamamax-api:\n    image: redis:7\n"
                 "    ports: ['6379:6379']\n") == []
    assert drift(registry, tmp_path, "taken.yml",
                 "services:\n  ollamamax-api:\n    image: redis:7\n"
                 "    ports: ['13100:6379']\n") == [("drift", "redis", 13100, 4),
                                                    ("collision", "gateway", 13100, 4)]


def test_a_known_products_image_vetoes_a_name(tmp_path: Path) -> None:
    registry = default_registry(tmp_path)
    # `postgres` running MySQL on MySQL's port is a MySQL server: no postgres drift.
    assert drift(registry, tmp_path, "compose.yml",
                 "services:\n  postgres:\n    image: mysql:8\n    ports: ['3306:3306']\n") == []
    # A name that is no compose name of the registry, with a product's image: not ours at all.
    assert drift(registry, tmp_path, "db.yml",
                 "services:\n  db:\n    image: mariadb:11\n    ports: ['3306:3306']\n") == []
