"""The registry model's own checks: each bad value is one line naming the key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError, UsageError
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry


def load(tmp_path: Path, service: str, stack: str = "", checks: str = "") -> Registry:
    path = tmp_path / "ports.toml"
    path.write_text(f"[stack]\n{stack}\n[checks]\n{checks}\n[services.api]\nexternal = true\n"
                    f"{service}\n")
    return load_registry(path)


def error(tmp_path: Path, service: str, stack: str = "", checks: str = "") -> str:
    with pytest.raises(RegistryError) as caught:
        load(tmp_path, service, stack, checks)
    return str(caught.value).split(": ", 1)[1]  # after the file and line


@pytest.mark.parametrize(("service", "message"), [
    ("port = 65536", "services.api.port: port 65536 is out of range 1-65535"),
    ("port = 0", "services.api.port: port 0 is out of range 1-65535"),
    ('port = 1\nhost = "a b"', "services.api.host: 'a b' is not an IP address or host name"),
    ('port = 1\nhosts = [""]', "services.api.hosts.0: '' is not a host name or IP address "
                               "(no port, no scheme)"),
    ('port = 1\nhosts = ["a.lan:80"]', "services.api.hosts.0: 'a.lan:80' is not a host name or IP "
                                   "address (no port, no scheme)"),
    ('port = 1\nenv = { A = "x\\ny" }',
     "services.api.env.A: an environment value must not contain NUL or a line break"),
    ('port = 1\nenv = { A = "x\\ry" }',
     "services.api.env.A: an environment value must not contain NUL or a line break"),
    ('port = 1\nenv = { A = "x\\u0000" }',
     "services.api.env.A: an environment value must not contain NUL or a line break"),
    ("port = 1\nworkers = 0", 'services.api.workers: workers must be 1-64 or "auto", got 0'),
    ("port = 1\nworkers = 65", 'services.api.workers: workers must be 1-64 or "auto", got 65'),
    ('port = 1\nreadiness = { tcp = true, http = "/x" }',
     "services.api.readiness: a probe has one kind, got http and tcp"),
    ('port = 1\nreadiness = { exec = "true", log = "x" }',
     "services.api.readiness: a probe has one kind, got exec and log"),
    ('port = 1\nreadiness = { http = "x" }',
     "services.api.readiness: http probe path must start with '/', got 'x'"),
    ('port = 1\nreadiness = { log = "(" }', "services.api.readiness: log probe '(' is not a "
                                            "valid regex: missing ), unterminated subpattern "
                                            "at position 0"),
    ("port = 1\nports = { a = 2 }", "services.api: give either `port` or `ports`, not both"),
    ("", "services.api: a service needs `port` or `ports`"),
    ('ports = { a = 2 }\nenv_keys = { c = ["Y"], b = ["X"] }',
     "services.api: env_keys names unknown port 'b'"),
    ('port = 1\nreadiness = { tcp = true, port = "web" }',
     "services.api: probe port 'web' is not one of ['main']"),
    ('port = 1\nliveness = { tcp = true, port = "web" }',
     "services.api: probe port 'web' is not one of ['main']"),
])
def test_a_bad_service_value_is_named_with_its_rule(tmp_path: Path, service: str,
                                                    message: str) -> None:
    assert error(tmp_path, service) == message


def test_an_empty_exclude_pattern_is_refused(tmp_path: Path) -> None:
    assert error(tmp_path, "port = 1", checks='exclude = [" "]') == (
        "checks.exclude.0: an empty pattern matches nothing")


def test_edge_values_that_are_fine(tmp_path: Path) -> None:
    registry = load(tmp_path, 'port = 65535\nworkers = 1\nenv = { A = "X" }\n'
                              'hosts = ["Api.LAN"]', stack='hosts = ["Stack.LAN"]',
                    checks='exclude = ["X"]')
    api = registry.services["api"]
    assert api.port == 65535 and api.workers == 1 and api.env == {"A": "X"}
    assert api.hosts == ["api.lan"] and registry.stack.hosts == ["stack.lan"]
    assert registry.checks.exclude == ["X"]
    named = load(tmp_path, 'ports = { api = 7, web = 8 }\nenv_keys = { web = ["W"] }\n'
                           'readiness = { tcp = true, port = "web" }\nliveness = { tcp = true }')
    api = named.services["api"]
    assert api.probe_port(api.readiness) == 8
    assert api.liveness is not None and api.probe_port(api.liveness) == 7


def test_workers_above_one_need_a_service_of_the_stack(tmp_path: Path) -> None:
    assert error(tmp_path, "port = 1\nworkers = 64").startswith(
        "services.api.workers: workers = 64 needs one of the stack's own services")


@pytest.mark.parametrize(("host", "url"), [
    ("0.0.0.0", "http://127.0.0.1:1"), ("::", "http://[::1]:1"), ("", "http://127.0.0.1:1"),
    ("10.1.2.3", "http://10.1.2.3:1"), ("127.0.0.1", "http://127.0.0.1:1"),
])
def test_a_wildcard_bind_is_reached_on_loopback(tmp_path: Path, host: str, url: str) -> None:
    registry = load(tmp_path, f'port = 1\nhost = "{host}"')
    assert registry.url(registry.services["api"]) == url
    registry = load(tmp_path, "port = 1", stack=f'host = "{host}"')  # the stack's bind address
    assert registry.url(registry.services["api"]) == url


def test_registry_paths_are_from_the_project_root(tmp_path: Path) -> None:
    registry = load(tmp_path, "port = 1")
    assert registry.path("deploy/x.yml") == (tmp_path / "deploy" / "x.yml").resolve()


def test_an_unknown_service_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text("[services.api]\nport = 1\nexternal = true\n"
                    "[services.db]\nport = 2\nexternal = true\n")
    with pytest.raises(UsageError) as caught:
        load_registry(path).service("web")
    assert str(caught.value) == "unknown service 'web' (known: api, db)"
