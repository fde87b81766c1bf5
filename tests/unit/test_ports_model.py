"""Issue 9, "What went wrong": a regression test per bullet, on the default registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ollamamax_stack.ports.drift import scan
from ollamamax_stack.ports.extract.dispatch import extract
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.model import Registry

ROOT = Path(__file__).resolve().parents[2]

Row = tuple[str, str | None, int | None, int | None]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """The project's registry, its own drift files left out, rooted at tmp_path."""
    text = (ROOT / "config" / "ports.toml").read_text()
    text = re.sub(r"drift_files = \[[^\]]*\]", "drift_files = []", text)
    text = text.replace('root = ".."', 'root = "."')
    path = tmp_path / "ports.toml"
    path.write_text(text)
    (tmp_path / "procfiles").mkdir()
    (tmp_path / "procfiles" / "Procfile").write_text((ROOT / "procfiles" / "Procfile").read_text())
    return load_registry(path)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def rows(registry: Registry, *paths: Path) -> list[Row]:
    return [(f.code, f.service, f.port, f.line) for f in scan(registry, list(paths)).findings]


def check(registry: Registry, tmp_path: Path, name: str, text: str | bytes) -> list[Row]:
    return rows(registry, write(tmp_path, name, text))


# --- Every file it cannot read is an error --------------------------------------------------

def test_binaries_archives_templates_and_json_data_are_skipped_not_errors(
        registry: Registry, tmp_path: Path) -> None:
    files = [
        write(tmp_path, "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        write(tmp_path, "dist.zip", b"PK\x03\x04\0\0binary"),
        write(tmp_path, "__pycache__/x.cpython-311.pyc", b"\xa7\r\r\n\0\0\0\0"),
        write(tmp_path, "chart/templates/svc.yaml",
              "ports:\n  - port: {{ .Values.port }}\n    targetPort: 8080\n"),
        write(tmp_path, "tsconfig.json", '{\n  // comments\n  "compilerOptions": {},\n}\n'),
        write(tmp_path, "tokenizer.json", '{"vocab": {"PORT": 5205, "EXPORT": 13100}}\n'),
        write(tmp_path, "package-lock.json", '{"x": "http://localhost:8080"}\n'),
    ]
    result = scan(registry, files)
    assert result.findings == []
    assert result.skipped == len(files) and result.read == 0


def test_a_read_kind_that_does_not_parse_stays_an_error(registry: Registry,
                                                        tmp_path: Path) -> None:
    assert check(registry, tmp_path, "docker-compose.yml",
                 "services:\n  a: [\n  b: 1\n")[0][0] == "file-unparsable"


# --- It guesses services from generic words -------------------------------------------------

def test_a_bare_port_in_an_unrelated_file_decides_nothing(registry: Registry,
                                                          tmp_path: Path) -> None:
    assert check(registry, tmp_path, "web/Dockerfile",
                 "FROM node:20\nENV PORT 3000\nEXPOSE 3000\n") == []
    assert check(registry, tmp_path, "vocab.json", '{"PORT": 5205}\n') == []
    assert check(registry, tmp_path, "app/.env", "PORT=3000\n") == []
    # The registry names `.env` (at the top of the tree) as the gateway's: there PORT is.
    assert check(registry, tmp_path, ".env", "PORT=3000\n") == [("drift", "gateway", 3000, 1)]


def test_a_generic_compose_name_with_another_image_is_not_the_service(
        registry: Registry, tmp_path: Path) -> None:
    compose = ("services:\n  db:\n    image: mariadb:10.6\n    ports: ['3306:3306']\n"
               "  cache:\n    image: memcached\n    ports: ['11211:11211']\n")
    assert check(registry, tmp_path, "docker-compose.yml", compose) == []


def test_a_scrape_job_name_is_not_evidence(registry: Registry, tmp_path: Path) -> None:
    prometheus = ("scrape_configs:\n  - job_name: redis\n    static_configs:\n"
                  "      - targets: ['redis_exporter:9121', 'localhost:9121', 'redis:9121']\n")
    assert check(registry, tmp_path, "prometheus.yml", prometheus) == []


def test_export_import_report_and_viewport_are_not_port_keys(registry: Registry,
                                                             tmp_path: Path) -> None:
    source = ("const EXPORT = 8080;\nconst IMPORT = 9090;\nlet REPORT = 6379;\n"
              "const viewPort = 11434;\nconst config = { viewPort: 13000, EXPORT: 13000 };\n")
    assert extract(Path("src/server.js"), source) == []
    assert check(registry, tmp_path, "src/server.js", source) == []


# --- It misses real collisions --------------------------------------------------------------

def test_an_unknown_service_publishing_a_registry_port_is_a_collision(
        registry: Registry, tmp_path: Path) -> None:
    compose = ("services:\n  minio:\n    image: minio/minio\n    ports:\n      - '9000:9000'\n"
               "      - '9090:9000'\n  cadvisor:\n    image: gcr.io/cadvisor/cadvisor\n"
               "    ports: ['8080:8080']\n")
    assert check(registry, tmp_path, "docker-compose.yml", compose) == [
        ("collision", "prometheus", 9090, 6), ("collision", "inference", 8080, 9)]


def test_services_are_recognised_by_their_image(registry: Registry, tmp_path: Path) -> None:
    compose = ("services:\n  redis-master:\n    image: docker.io/library/redis:7-alpine\n"
               "    ports: ['6380:6379']\n  grafana-secure:\n    image: grafana/grafana:10.2.0\n"
               "    ports: ['3000:3000']\n")
    assert check(registry, tmp_path, "docker-compose.yml", compose) == [
        ("drift", "redis", 6380, 4), ("drift", "grafana", 3000, 7)]


def test_servers_of_one_tree_defaulting_to_one_port_conflict(registry: Registry,
                                                             tmp_path: Path) -> None:
    servers = [write(tmp_path, f"{name}/server.js",
                     "const port = process.env.PORT || 13000;\napp.listen(port);\n")
               for name in ("api", "ws", "admin")]
    got = rows(registry, *servers)
    assert [(code, line) for code, _, port, line in got] == [("conflict", 1), ("conflict", 1)]
    assert all(port == 13000 for _, _, port, _ in got)


def test_env_default_urls_and_go_listen_addresses_are_read(registry: Registry,
                                                           tmp_path: Path) -> None:
    assert check(registry, tmp_path, "web/src/ollama.ts",
                 "const base = process.env.OLLAMA_URL || 'http://localhost:13000';\n") == [
        ("drift", "ollama", 13000, 1)]
    config = ('package config\n\nfunc Default() *Config {\n\treturn &Config{\n'
              '\t\tListen: "0.0.0.0:11434",\n\t}\n}\n')
    # The Go backend on Ollama's port: a collision; another port of it is only unregistered.
    assert check(registry, tmp_path, "ollama-distributed/internal/config/config.go", config) == [
        ("collision", "ollama", 11434, 5)]
    assert check(registry, tmp_path, "x/ollama-distributed/internal/config/config.go",
                 config.replace("11434", "7000")) == [("unregistered", "inference", 7000, 5)]


# --- It reports conflicts across files that never run together ------------------------------

def test_alternative_compose_files_do_not_conflict_but_overrides_do(
        registry: Registry, tmp_path: Path) -> None:
    gpu = write(tmp_path, "docker-compose.gpu.yml",
                "services:\n  webui:\n    image: x\n    ports: ['3000:8080']\n")
    cpu = write(tmp_path, "docker-compose.cpu.yml",
                "services:\n  webui-cpu:\n    image: x\n    ports: ['3000:8080']\n")
    assert rows(registry, gpu, cpu) == []
    base = write(tmp_path, "docker-compose.yml",
                 "services:\n  webui:\n    image: x\n    ports: ['3000:8080']\n")
    override = write(tmp_path, "docker-compose.override.yml",
                     "services:\n  webui:\n    ports: ['3000:8080']\n"
                     "  docs:\n    image: y\n    ports: ['3000:80']\n")
    assert rows(registry, base, override) == [("conflict", None, 3000, 6)]
    # `include:` merges another file into the project.
    main = write(tmp_path, "inc/compose.yaml", "include:\n  - ./docs/compose.yaml\n"
                 "services:\n  web:\n    image: x\n    ports: ['4000:80']\n")
    docs = write(tmp_path, "inc/docs/compose.yaml",
                 "services:\n  docs:\n    image: y\n    ports: ['4000:80']\n")
    assert rows(registry, docs, main) == [("conflict", None, 4000, 6)]


# --- Some bad input passes silently ---------------------------------------------------------

def test_a_bom_and_utf16_dotenv_are_decoded(registry: Registry, tmp_path: Path) -> None:
    assert check(registry, tmp_path, "a/.env", b"\xef\xbb\xbfREDIS_PORT=6380\r\n") == [
        ("drift", "redis", 6380, 1)]
    assert check(registry, tmp_path, "b/.env",
                 "REDIS_PORT=6380\r\n".encode("utf-16")) == [("drift", "redis", 6380, 1)]


def test_yaml_merge_keys_are_resolved_and_reported_at_the_alias(
        registry: Registry, tmp_path: Path) -> None:
    compose = ("x-redis: &redis\n  image: redis:7\n  ports:\n    - '6380:6379'\n"
               "x-ports: &ports\n  - '6381:6379'\n"
               "services:\n  cache-a:\n    <<: *redis\n"
               "  cache-b:\n    image: redis:7\n    ports: *ports\n")
    assert check(registry, tmp_path, "docker-compose.yml", compose) == [
        ("drift", "redis", 6380, 9), ("drift", "redis", 6381, 12)]


def test_bad_port_forms_are_errors(registry: Registry, tmp_path: Path) -> None:
    compose = ("services:\n  a:\n    image: x\n    ports: \"13000:13100\"\n"
               "  b:\n    image: x\n    ports: ['0:80', '99999:80', '8010-8000:8010-8000']\n")
    got = check(registry, tmp_path, "docker-compose.yml", compose)
    assert ("collision", "gateway", 13100, 4) not in got  # 13100 is the container side
    assert [code for code, *_ in got if code == "port-invalid"] == ["port-invalid"] * 3
    assert check(registry, tmp_path, "one/docker-compose.yml",
                 "services:\n  ollamamax-api:\n    build: .\n    ports: \"13000:13100\"\n") == [
        ("drift", "gateway", 13000, 4)]


# --- Noise ----------------------------------------------------------------------------------

def test_a_real_compose_file_gives_no_warnings(registry: Registry, tmp_path: Path) -> None:
    compose = ("services:\n  web:\n    image: nginx\n    ports: ['80:80', '443:443']\n"
               "    environment:\n      - API_URL=http://localhost:4000\n"
               "  api:\n    build: .\n    ports: ['4000:4000']\n    expose: [9464]\n")
    assert check(registry, tmp_path, "docker-compose.yml", compose) == []


def test_a_range_is_one_finding(registry: Registry, tmp_path: Path) -> None:
    compose = "services:\n  a:\n    image: x\n    ports: ['8000-8100:8000-8100']\n"
    assert check(registry, tmp_path, "docker-compose.yml", compose) == [
        ("collision", "inference", 8080, 4)]


def test_paths_are_relative_to_the_working_directory(registry: Registry, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "deploy/.env", "REDIS_PORT=6380\n")
    monkeypatch.chdir(tmp_path / "deploy")
    assert [f.file for f in scan(registry, [path.resolve()]).findings] == [".env"]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert [f.file for f in scan(registry, [path.resolve()]).findings] == [
        str(Path("..") / "deploy" / ".env")]


# --- What `--fix` needs: the registry's port and where the written port is ---------------------

def test_a_drift_names_the_expected_port_and_the_column_of_the_written_one(
        registry: Registry, tmp_path: Path) -> None:
    env = write(tmp_path, "x/.env", "# redis\nREDIS_PORT=6380\n")
    compose = write(tmp_path, "x/docker-compose.yml",
                    "services:\n  grafana:\n    image: grafana/grafana\n"
                    "    ports:\n      - \"3000:3000\"\n")
    found = {(f.file, f.line): f for f in scan(registry, [env, compose]).findings}
    dotenv = next(f for (file, _), f in found.items() if file and file.endswith(".env"))
    assert (dotenv.code, dotenv.expected, dotenv.line, dotenv.column) == ("drift", 6379, 2, 12)
    published = next(f for (file, _), f in found.items() if file and file.endswith(".yml"))
    assert (published.code, published.expected, published.column) == ("drift", 3001, 10)


def test_a_default_port_in_a_file_that_starts_no_server_binds_nothing(
        registry: Registry, tmp_path: Path) -> None:
    config = write(tmp_path, "backend/src/config.js",
                   "module.exports = { port: process.env.PORT || 8080 };\n")
    probe = write(tmp_path, "backend/healthcheck.js",
                  "http.request({ host: 'localhost', port: process.env.PORT || 8080 });\n")
    assert rows(registry, config, probe) == []


def test_test_and_example_sources_are_skipped_their_compose_files_read(
        registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fake = write(tmp_path, "tests/test_client.py", "OLLAMA_URL = 'http://localhost:9999'\n")
    example = write(tmp_path, "examples/app.js", "const OLLAMA_URL = 'http://localhost:9999';\n")
    compose = write(tmp_path, "tests/docker-compose.yml",
                    "services:\n  cache:\n    image: redis:7\n    ports: ['6380:6379']\n")
    result = scan(registry, [fake, example, compose])
    assert [(f.code, f.file) for f in result.findings] == [
        ("drift", str(Path("tests") / "docker-compose.yml"))]
    assert (result.read, result.skipped) == (1, 2)


def test_compose_substitutes_its_projects_dotenv_into_published_ports(
        registry: Registry, tmp_path: Path) -> None:
    write(tmp_path, "app/.env", "APP_PORT=8080\nGRAFANA_PORT=3000\n")
    compose = write(tmp_path, "app/docker-compose.yml",
                    "services:\n  app:\n    image: mattermost\n    ports: ['${APP_PORT}:8065']\n"
                    "  dash:\n    image: grafana/grafana\n"
                    "    ports: ['${GRAFANA_PORT:-3001}:3000']\n")
    assert rows(registry, compose) == [
        ("collision", "inference", 8080, 4), ("drift", "grafana", 3000, 7)]
    # Without the .env, only what the file says: APP_PORT unset publishes nothing known.
    alone = write(tmp_path, "other/docker-compose.yml", compose.read_text())
    assert rows(registry, alone) == []
