"""`--fix` on findings: the registry's port put in place, every other byte of the file kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.ports.fix import plan_fixes
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry

REGISTRY = """\
[services.api]
port = 13100
external = true
env_keys = ["PORT", "API_PORT"]

[services.hub]
port = 13101
external = true

[services.backend]
ports = { api = 8080, web = 8081 }
external = true
env_keys = { api = ["GO_API_PORT"], web = ["WEB_PORT"] }

[services.ollama]
port = 11434
external = true
env_keys = ["OLLAMA_URL"]

[services.grafana]
port = 3001
container_port = 3000
external = true
"""


@dataclass(frozen=True)
class ModelFinding(Finding):
    """A finding from a model that says which port it expects (and on which side)."""

    expected: int | None = None
    column: int | None = None
    side: str | None = None


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    (tmp_path / "ports.toml").write_text(REGISTRY)
    monkeypatch.chdir(tmp_path)
    return load_registry(tmp_path / "ports.toml")


def drift(service: str, port: int, file: str, line: int, container: bool = False) -> Finding:
    inside = " inside its container" if container else ""
    return Finding("error", "drift", f"{service} has port X{inside} in the registry, but ...",
                   service, port, file, line)


def fixed(registry: Registry, name: str, text: str | bytes, *findings: Finding) -> str:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    plan = plan_fixes(registry, findings)
    assert not plan.skipped, plan.skipped
    plan.write()
    return path.read_bytes().decode()


def test_dotenv_values_change_and_comments_stay(registry: Registry) -> None:
    text = ("# ports, was 13000\nPORT=13000  # the gateway, not 13000\n"
            "export API_PORT=\"13000\" # quoted\nGO_API_PORT=11434\nWEB_PORT=9000\n"
            "OLLAMA_URL=http://localhost:11435/api,http://10.0.0.2:11434\n")
    result = fixed(registry, ".env", text, drift("api", 13000, ".env", 2),
                   drift("api", 13000, ".env", 3), drift("backend", 11434, ".env", 4),
                   drift("backend", 9000, ".env", 5), drift("ollama", 11435, ".env", 6))
    assert result == ("# ports, was 13000\nPORT=13100  # the gateway, not 13000\n"
                      "export API_PORT=\"13100\" # quoted\nGO_API_PORT=8080\nWEB_PORT=8081\n"
                      "OLLAMA_URL=http://localhost:11434/api,http://10.0.0.2:11434\n")


def test_crlf_and_a_missing_last_newline_are_kept(registry: Registry) -> None:
    result = fixed(registry, "win.env", b"A=1\r\nPORT=13000\r\nB=2",
                   drift("api", 13000, "win.env", 2))
    assert result == "A=1\r\nPORT=13100\r\nB=2"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_bom_and_utf16_are_written_back_as_they_were(registry: Registry, encoding: str) -> None:
    path = Path("bom.env")
    path.write_bytes("PORT=13000\nGO_API_PORT=11434\n".encode(encoding))
    plan = plan_fixes(registry, [drift("api", 13000, "bom.env", 1),
                                 drift("backend", 11434, "bom.env", 2)])
    plan.write()
    assert [str(e) for e in plan.edits] == ["bom.env:1 13000 -> 13100 (api)",
                                            "bom.env:2 11434 -> 8080 (backend)"]
    assert path.read_bytes() == "PORT=13100\nGO_API_PORT=8080\n".encode(encoding)


def test_js_default_and_nginx_listen(registry: Registry) -> None:
    js = "const PORT = process.env.PORT || 13000; // was 3000\nserver.listen(PORT);\n"
    assert fixed(registry, "api-server/server.js", js,
                 drift("hub", 13000, "api-server/server.js", 1)).splitlines()[0] == (
        "const PORT = process.env.PORT || 13101; // was 3000")
    conf = "server {\n    listen 127.0.0.1:13000 default_server;  # 13000 before\n}\n"
    assert fixed(registry, "nginx.conf", conf, drift("api", 13000, "nginx.conf", 2)) == (
        "server {\n    listen 127.0.0.1:13100 default_server;  # 13000 before\n}\n")


COMPOSE = """\
# The custom compose file of the port document.
services:
  ollamamax-api:
    build: .
    ports:
      - "13000:13000"  # API server
  grafana:
    image: grafana/grafana
    ports:
      - '13000:3000'   # Monitoring
      - 127.0.0.1:3001:3001
      - target: 3001
        published: "13000"
"""


def test_compose_ports_each_side_gets_its_own_port(registry: Registry) -> None:
    result = fixed(registry, "docker-compose.yml", COMPOSE,
                   drift("api", 13000, "docker-compose.yml", 6),
                   drift("grafana", 13000, "docker-compose.yml", 10),
                   drift("grafana", 3001, "docker-compose.yml", 11, container=True),
                   drift("grafana", 3001, "docker-compose.yml", 12, container=True),
                   drift("grafana", 13000, "docker-compose.yml", 13))
    # Quotes kept; a comment keeps its column when the value before it gets shorter.
    assert result == COMPOSE.replace('"13000:13000"', '"13100:13100"').replace(
        "'13000:3000'   #", "'3001:3000'    #").replace("3001:3001", "3001:3000").replace(
        "target: 3001", "target: 3000").replace('"13000"', '"3001"')


def test_a_layout_ruamel_would_change_is_edited_by_line(registry: Registry) -> None:
    text = ("---\nservices:\n  api:\n    image: x\n    ports: [ \"13000:13000\" ,  \"9\" ]\n"
            "    command:   [\"a\",   'b']\n")
    result = fixed(registry, "c.yml", text, drift("api", 13000, "c.yml", 5))
    assert result == text.replace("13000:13000", "13100:13100")


def test_the_models_expected_port_and_side_win(registry: Registry) -> None:
    text = "services:\n  grafana:\n    environment:\n      GF_SERVER_HTTP_PORT: 3001\n"
    finding = ModelFinding("error", "drift", "grafana ...", "grafana", 3001, "g.yml", 4,
                           expected=3000, side="container")
    assert fixed(registry, "g.yml", text, finding) == text.replace("3001", "3000")
    named = ModelFinding("error", "drift", "backend ...", "backend", 9000, "x.js", 1,
                         expected=8081)
    assert fixed(registry, "x.js", "fetch('http://localhost:9000/status')\n", named) == (
        "fetch('http://localhost:8081/status')\n")
    # A column says which of two equal numbers on the line is the port.
    text = "FALLBACK_URL=http://localhost:13000/?retry=13000\n"
    at = ModelFinding("error", "drift", "api ...", "api", 13000, "c.env", 1, expected=13100,
                      column=text.index("13000") + 1)
    assert fixed(registry, "c.env", text, at) == text.replace("13000/", "13100/")


def test_what_cannot_be_fixed_is_said_and_left(registry: Registry) -> None:
    Path("x.js").write_text("fetch('http://localhost:9000/api/v1')\n")
    Path("y.env").write_text("PORT=13100\n")
    plan = plan_fixes(registry, [drift("backend", 9000, "x.js", 1),
                                 drift("api", 13000, "y.env", 1),
                                 Finding("error", "conflict", "...", "api", 13100, "y.env", 1)])
    assert plan.edits == [] and plan.files == {}
    reasons = [str(s) for s in plan.skipped]
    assert reasons == [
        "x.js:1 not fixed: backend has several ports (api 8080 and web 8081); which one is "
        "meant is not clear",
        "y.env:1 not fixed: no port 13000 to change on the line"]
    assert Path("x.js").read_text() == "fetch('http://localhost:9000/api/v1')\n"


def test_a_port_from_an_anchor_is_left_to_the_user(registry: Registry) -> None:
    Path("a.yml").write_text("x-ports: &ports\n  - \"13000:13000\"\nservices:\n  api:\n"
                             "    image: x\n    ports: *ports\n")
    plan = plan_fixes(registry, [drift("api", 13000, "a.yml", 6)])
    assert plan.files == {}
    assert [str(s) for s in plan.skipped] == [
        "a.yml:6 not fixed: the port comes from *ports; change it where its anchor is defined"]


def test_diff_shows_without_writing_and_fixing_twice_changes_nothing(
        registry: Registry) -> None:
    Path(".env").write_text("PORT=13000\n")
    finding = drift("api", 13000, ".env", 1)
    plan = plan_fixes(registry, [finding])
    assert plan.diff() == "--- a/.env\n+++ b/.env\n@@ -1 +1 @@\n-PORT=13000\n+PORT=13100\n"
    assert Path(".env").read_text() == "PORT=13000\n"
    assert [str(e) for e in plan.edits] == [".env:1 13000 -> 13100 (api)"]
    plan.write()
    again = plan_fixes(registry, [finding])
    assert again.files == {} and again.edits == []
    assert Path(".env").read_text() == "PORT=13100\n"
