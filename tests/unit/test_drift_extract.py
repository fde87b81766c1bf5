"""Each drift extractor: the ports a file of its format names, with lines and hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.ports.extract import ExtractError
from ollamamax_stack.ports.extract.dispatch import extract, file_format

NAMES = frozenset({"gateway", "ollamamax-api", "grafana", "inference", "ollama", "hub"})


def refs(name: str, text: str) -> list[tuple[int, int, str, tuple[str, ...], str | None, str]]:
    return [(r.port, r.line, r.kind, r.keys, r.owner, r.side)
            for r in extract(Path(name), text, NAMES)]


@pytest.mark.parametrize(("name", "kind"), [
    (".env", "dotenv"), (".env.example", "dotenv"), ("prod.env", "dotenv"),
    ("Dockerfile", "dockerfile"), ("Dockerfile.gpu", "dockerfile"), ("nginx.conf", "nginx"),
    ("docker-compose.yml", "yaml"), ("endpoints.json", "json"), ("app.ts", "source"),
    ("main.go", "source"), ("README.md", "text"), ("nginx/conf.d/default.conf", "nginx"),
])
def test_format_by_file_name(name: str, kind: str) -> None:
    assert file_format(Path(name)) == kind


def test_dotenv_ports_urls_lists_and_comments() -> None:
    text = ("# PORT=1\nexport PORT=13100\nAPI_PORT='13100'  # quoted\nTIMEOUT=30000\n"
            "OLLAMA_NODES=http://localhost:11434,http://127.0.0.1:11435\n"
            "OLLAMA_HOST=0.0.0.0:11434\nREMOTE=http://example.com:9999\n"
            "GRAFANA_PORT=${GF:-3001}\n")
    assert refs(".env", text) == [
        (13100, 2, "env", ("PORT",), None, "host"),
        (13100, 3, "env", ("API_PORT",), None, "host"),
        (11434, 5, "env", ("OLLAMA_NODES",), None, "host"),
        (11435, 5, "env", ("OLLAMA_NODES",), None, "host"),
        (11434, 6, "env", ("OLLAMA_HOST",), None, "host"),
        (3001, 8, "env", ("GRAFANA_PORT", "GF"), None, "host"),
    ]


COMPOSE = """\
services:
  ollamamax-api:
    ports:
      - "13100:13100"
      - 127.0.0.1:3000:3000/tcp
      - "8080-8081:9080-9081"
      - 13199
    environment:
      - PORT=13100
      - OLLAMAMAX_INFERENCE_URL=http://inference:8080
  grafana:
    ports:
      - target: 3000
        published: "3001"
        host_ip: 127.0.0.1
      - "${GRAFANA_PORT:-3001}:3000"
    environment:
      GF_SERVER_HTTP_PORT: 3000
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:3000/api/health"]
"""


def test_compose_short_long_ranges_environment_and_healthcheck() -> None:
    got = refs("docker-compose.yml", COMPOSE)
    assert (13100, 4, "publish", (), "ollamamax-api", "host") in got
    assert (13100, 4, "publish", (), "ollamamax-api", "container") in got
    assert (3000, 5, "publish", (), "ollamamax-api", "host") in got
    ranges = [(r.port, r.last, r.side) for r in extract(Path("c.yml"), COMPOSE, NAMES)
              if r.line == 6]
    assert ranges == [(8080, 8081, "host"), (9080, 9081, "container")]  # a range is one ref
    assert (13199, 7, "publish", (), "ollamamax-api", "container") in got
    assert not any(p == 13199 and side == "host" for p, *_, side in got)
    assert (13100, 9, "env", ("PORT",), "ollamamax-api", "container") in got
    assert (8080, 10, "env", ("OLLAMAMAX_INFERENCE_URL",), "inference", "container") in got
    assert (3001, 14, "publish", (), "grafana", "host") in got
    assert (3000, 13, "publish", (), "grafana", "container") in got
    assert (3001, 16, "publish", ("GRAFANA_PORT",), "grafana", "host") in got
    assert (3000, 18, "env", ("GF_SERVER_HTTP_PORT",), "grafana", "container") in got
    assert (3000, 20, "healthcheck", (), "grafana", "container") in got


def test_compose_without_a_services_table_as_in_the_port_document() -> None:
    text = 'ollamamax-api:\n  ports:\n    - "13100:13100"\ngrafana:\n  ports:\n    - "3001:3000"\n'
    got = refs("docker-compose.yml", text)
    assert (3001, 6, "publish", (), "grafana", "host") in got


def test_nginx_listen_proxy_pass_and_upstream_servers() -> None:
    text = ("upstream gateway {\n  server 127.0.0.1:13100;\n  server inference:8080 backup;\n}\n"
            "server {\n  listen 8443 ssl;  # tls\n  listen [::]:8443;\n"
            "  location /v1 { proxy_pass http://localhost:13100; }\n"
            "  location / { proxy_pass http://gateway; }\n}\n")
    assert refs("nginx.conf", text) == [
        (13100, 2, "upstream", (), None, "host"),  # an upstream's name is no evidence
        (8080, 3, "upstream", (), "inference", "container"),
        (8443, 6, "listen", (), None, "host"),
        (8443, 7, "listen", (), None, "host"),
        (13100, 8, "proxy_pass", (), None, "host"),
    ]


def test_nginx_unbalanced_braces_do_not_parse() -> None:
    with pytest.raises(ExtractError):
        extract(Path("nginx.conf"), "server {\n listen 80;\n", NAMES)
    with pytest.raises(ExtractError) as info:
        extract(Path("nginx.conf"), "}\n", NAMES)
    assert info.value.line == 1


def test_dockerfile_expose_env_arg_and_healthcheck() -> None:
    text = ("FROM node:20\nARG API_PORT=13100\nENV PORT=13100 NODE_ENV=production\n"
            "ENV WS_PORT 13101\nEXPOSE 13100/tcp 13101\n"
            "HEALTHCHECK --interval=5s \\\n  CMD curl -f http://localhost:13100/health\n")
    assert refs("Dockerfile", text) == [
        (13100, 2, "env", ("API_PORT",), None, "container"),
        (13100, 3, "env", ("PORT",), None, "container"),
        (13101, 4, "env", ("WS_PORT",), None, "container"),
        (13100, 5, "expose", (), None, "container"),
        (13101, 5, "expose", (), None, "container"),
        (13100, 6, "healthcheck", (), None, "container"),
    ]


def test_prometheus_targets_local_or_on_a_service_host() -> None:
    text = ("scrape_configs:\n  - job_name: gateway\n    static_configs:\n"
            "      - targets: ['127.0.0.1:13100', 'hub:13101', 'remote.example:9100']\n")
    assert refs("prometheus.yml", text) == [
        (13100, 4, "target", (), None, "host"),  # the job's name is no evidence
        (13101, 4, "target", (), "hub", "container"),
    ]


def test_urls_in_source_keep_the_name_and_path() -> None:
    text = ("const endpoints = [\n  'ws://localhost:13100/chat',\n];\n"
            "const API_BASE = 'http://127.0.0.1:13100';\n"
            "fetch('https://api.example.com:8443/v1');\n"
            "const port = process.env.PORT || 13000;\n"
            "const ws = Number(process.env['WS_PORT']) ?? '13001';\n"
            "server.listen(13002);\n")
    got = [(r.port, r.line, r.kind, r.keys, r.path) for r in extract(Path("app.js"), text)]
    assert got == [
        (13100, 2, "url", (), "/chat"),
        (13100, 4, "url", ("API_BASE",), None),
        (13000, 6, "default", ("PORT",), None),
        (13001, 7, "default", ("WS_PORT",), None),
        (13002, 8, "listen", (), None),
    ]


def test_markdown_and_shell_urls() -> None:
    assert [(r.port, r.line) for r in extract(Path("README.md"), "See <http://localhost:9090>.\n"
                                              "curl http://0.0.0.0:8080/health\n")] == [
        (9090, 1), (8080, 2)]
    assert [(r.port, r.keys) for r in extract(Path("run.sh"), "export PORT=13100\n")] == [
        (13100, ("PORT",))]


def test_invalid_yaml_and_json_name_the_line() -> None:
    with pytest.raises(ExtractError) as yaml_error:
        extract(Path("compose.yml"), "services:\n  a: [\n  b: 1\n", NAMES)
    assert yaml_error.value.line is not None
    with pytest.raises(ExtractError) as json_error:
        extract(Path("x.json"), '{\n"a": 1,\n}\n', NAMES)
    assert json_error.value.line == 3


def test_ports_out_of_range_are_not_ports_but_problems() -> None:
    got = [(r.line, r.problem) for r in extract(Path(".env"),
                                                "PORT=0\nAPI_PORT=70000\nWS_PORT=abc\n")]
    assert got == [(1, "port 0 is not a port (1-65535)"),
                   (2, "port 70000 is out of range 1-65535")]
