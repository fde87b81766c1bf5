"""The registry loader: the default registry, profiles, offset, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.environ import service_environment
from tests.conftest import REGISTRY

MINIMAL = """\
[stack]
name = "t"
procfile = "Procfile"

[services.api]
port = 9100
depends_on = ["db"]
readiness = { http = "/ready", timeout = 5 }

[services.db]
port = 9101
external = true
optional = true
"""


def write(tmp_path: Path, toml: str, procfile: str = "api: python3 -m http.server $PORT\n") -> Path:
    (tmp_path / "Procfile").write_text(procfile)
    path = tmp_path / "ports.toml"
    path.write_text(toml)
    return path


def error_of(path: Path, **kwargs: object) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        load_registry(path, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    return info.value


def test_default_registry_is_the_port_document() -> None:
    registry = load_registry(REGISTRY)
    ports = {s.name: s.port_map for s in registry.services.values()}
    assert ports == {
        "gateway": {"main": 13100}, "hub": {"main": 13101}, "fallback": {"main": 13102},
        "inference": {"api": 8080, "web": 8081}, "ollama": {"main": 11434},
        "postgres": {"main": 5432}, "redis": {"main": 6379}, "grafana": {"main": 3001},
        "prometheus": {"main": 9090},
    }
    assert registry.services["grafana"].container_port == 3000
    assert registry.services["ollama"].external and registry.services["ollama"].optional
    default = [s.name for s in registry.active]
    assert default == ["gateway", "hub", "fallback", "inference", "ollama"]
    full = [s.name for s in load_registry(REGISTRY, profile="full").active]
    assert set(full) == set(ports)


def test_every_managed_service_has_a_command() -> None:
    registry = load_registry(REGISTRY, profile="full")
    assert all(s.command for s in registry.managed)


def test_offset_shifts_ports_urls_and_cors(tmp_path: Path) -> None:
    registry = load_registry(REGISTRY, offset=1000)
    gateway = registry.services["gateway"]
    assert gateway.primary_port == 14100
    assert registry.url(registry.services["inference"], "web") == "http://127.0.0.1:9081"
    assert "http://localhost:14100" in gateway.cors
    assert "http://localhost:3000" in gateway.cors  # not a registry port: left alone
    env = service_environment(registry, registry.services["inference"])
    assert env["PORT"] == "9080" and env["PORT_WEB"] == "9081"
    assert env["OLLAMAMAX_GATEWAY_URL"] == "http://127.0.0.1:14100"
    assert env["OLLAMAMAX_OLLAMA_URL"] == "http://127.0.0.1:12434"


def test_registry_is_found_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ports.toml").write_text(MINIMAL.replace('"Procfile"', '"../Procfile"'))
    (tmp_path / "Procfile").write_text("api: true\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv("OLLAMAMAX_CONFIG", raising=False)
    assert load_registry().stack.name == "t"


def test_procfile_supplies_commands(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, MINIMAL))
    assert registry.services["api"].command == "python3 -m http.server $PORT"
    assert registry.services["db"].command is None


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("port = 9100", "port = 0"), "port 0 is out of range"),
        (lambda t: t.replace("port = 9100", "port = 70000"), "port 70000 is out of range"),
        (lambda t: t.replace("port = 9100", 'port = "9100"'), "services.api.port"),
        (lambda t: t.replace("port = 9101", "port = 9100"), "both 'api' and 'db'"),
        (lambda t: t.replace('["db"]', '["nope"]'), "unknown service 'nope'"),
        (lambda t: t + 'depends_on = ["api"]\n', "dependency cycle: "),
        (lambda t: t.replace("[services.api]", "[services.api\n"), "invalid TOML"),
        (lambda t: t.replace("timeout = 5", "timeout = -1"), "services.api.readiness.timeout"),
        (lambda t: t.replace("optional = true", "optional = 1"), "services.db.optional"),
        (lambda t: t + "colour = 'red'\n", "unknown key"),
        (lambda t: t.replace('http = "/ready"', 'http = "/r", tcp = true'), "one kind"),
        (lambda t: t.replace("[services.db]", "[services.Bad_Name]"), "services.Bad_Name"),
    ],
    ids=["port-0", "port-70000", "wrong-type", "duplicate", "unknown-dep", "cycle",
         "malformed", "negative-timeout", "bool-type", "unknown-key", "two-probes", "bad-name"],
)
def test_bad_registry_is_one_line_naming_the_place(tmp_path: Path, edit, expected: str) -> None:
    path = write(tmp_path, edit(MINIMAL))
    error = error_of(path)
    assert expected in str(error)
    assert "ports.toml" in str(error)
    assert error.exit_code == 2


def test_errors_carry_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("port = 9100", "port = 70000"))
    error = error_of(path)
    assert error.line == 6
    assert str(error).startswith(f"{error.file}:6: services.api.port:")


def test_cycle_is_named(tmp_path: Path) -> None:
    text = MINIMAL.replace("external = true\n", 'external = true\ndepends_on = ["api"]\n')
    assert "api -> db -> api" in str(error_of(write(tmp_path, text))) or \
        "db -> api -> db" in str(error_of(write(tmp_path, text)))


def test_unknown_profile(tmp_path: Path) -> None:
    assert "unknown profile 'gpu' (known: default)" in str(
        error_of(write(tmp_path, MINIMAL), profile="gpu"))


def test_negative_offset_below_one(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, MINIMAL), offset=-9100)
    assert "--offset -9100 moves port 9100 to 0" in str(error)
    assert error.key == "services.api.port"


def test_managed_service_without_command(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, MINIMAL, procfile="# nothing\n"))
    assert "services.api" in str(error) and "no command" in str(error)


def test_procfile_line_for_unknown_service(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, MINIMAL, procfile="api: true\nweb: true\n"))
    assert "Procfile:2" in str(error) and "'web'" in str(error)


def test_missing_registry_file(tmp_path: Path) -> None:
    error = error_of(tmp_path / "absent.toml")
    assert "cannot read the registry" in str(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[stack]\nroot = "\\u0000"\n', "stack.root: must not contain a NUL"),
        ('[stack]\nprocfile = "/"\n[services.a]\nport = 1\n', "cannot read Procfile"),
        ('[services.api]\nport = 1\nexternal = true\nhost = "a b"\n', "services.api.host"),
        ("x = " + "[" * 5000, "invalid TOML"),
    ],
    ids=["nul-path", "procfile-is-a-dir", "bad-host", "deep-nesting"],
)
def test_hostile_documents(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in str(error_of(write(tmp_path, text)))
