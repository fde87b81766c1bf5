"""Every target renders from the registry alone: offset and profile reach every file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.base import write_files
from ollamamax_stack.render.targets import TARGETS, RenderOptions, render
from tests.render_project import ROOT, project_copy

REGISTRY = ROOT / "config" / "ports.toml"
OFFSET = 7
RENDERABLE = [t for t in TARGETS if t != "supervisord"]
WITH_PORTS = [t for t in RENDERABLE if t != "alerts"]  # alert rules name services, not ports


def ports_in(text: str) -> set[int]:
    # Descriptions are prose from the registry ("api 8080, web 8081"): not addresses.
    for service in load_registry(REGISTRY).services.values():
        text = text.replace(service.description, "")
    return {int(p) for p in re.findall(r"(?<![\d.])(\d{4,5})(?![\d.])", text)}


@pytest.mark.parametrize("target", WITH_PORTS)
def test_offset_moves_every_port_of_every_file(target: str) -> None:
    plain = load_registry(REGISTRY, profile="full")
    shifted = load_registry(REGISTRY, profile="full", offset=OFFSET)
    registered = {p for s in plain.services.values() for p in s.port_map.values()}
    before = "".join(render(target, plain).values())
    after = "".join(render(target, shifted).values())
    used = ports_in(before) & registered
    assert used, f"{target} mentions no registry port"
    # Grafana's container port (3000) is the container's, not the stack's: it does not move.
    assert used - {3000} <= {p - OFFSET for p in ports_in(after)}
    assert not (ports_in(after) & (used - {3000})), f"{target} kept an unshifted port"


def test_profile_decides_which_services_are_rendered() -> None:
    default = render("compose", load_registry(REGISTRY))
    full = render("compose", load_registry(REGISTRY, profile="full"))
    assert "postgres" not in yaml.safe_load(default["docker-compose.yml"])["services"]
    services = yaml.safe_load(full["docker-compose.yml"])["services"]
    assert services["postgres"]["profiles"] == ["full"]
    assert "ollama" not in services  # external: probed, not launched


def test_env_has_the_port_document_keys_with_registry_values() -> None:
    text = render("env", load_registry(REGISTRY))[".env"]
    values = dict(line.split("=", 1) for line in text.splitlines()
                  if line and not line.startswith("#"))
    assert values["PORT"] == values["API_PORT"] == "13100"
    assert values["GO_API_PORT"] == "8080"  # no longer Ollama's 11434
    assert values["OLLAMA_NODES"] == "http://127.0.0.1:11434"


def test_frontend_lists_websocket_endpoints_in_fallback_order() -> None:
    files = render("frontend", load_registry(REGISTRY))
    data = json.loads(files["endpoints.json"])
    assert data["endpoints"] == [f"ws://127.0.0.1:{p}/chat" for p in (13100, 13101, 13102)]
    assert data["apiBase"] == "http://127.0.0.1:13100"
    assert "'ws://127.0.0.1:13101/chat'" in files["endpoints.js"].replace('"', "'")


def test_unknown_target_and_misplaced_options_are_usage_errors() -> None:
    registry = load_registry(REGISTRY)
    with pytest.raises(UsageError, match="unknown render target 'helm'"):
        render("helm", registry)
    with pytest.raises(UsageError, match="--namespace applies to `render k8s` only"):
        render("systemd", registry, RenderOptions(namespace="x"))
    with pytest.raises(UsageError, match="--replicas must be at least 1"):
        render("k8s", registry, RenderOptions(replicas=0))


RENAME_FALLBACK = {"[services.fallback]": "[services.fallback-]",
                   '"hub", "fallback", "inference"]': '"hub", "fallback-", "inference"]'}
INFERENCE_PORTS = "ports = { api = 8080, web = 8081 }"
INFERENCE_KEYS = 'api = ["GO_API_PORT"'


@pytest.mark.parametrize("edit, procfile_edit, message", [
    (RENAME_FALLBACK, {"fallback:": "fallback-:"}, "'fallback-' is not a valid Kubernetes"),
    ({INFERENCE_PORTS: INFERENCE_PORTS.replace("api", "api_v1"),
      INFERENCE_KEYS: INFERENCE_KEYS.replace("api", "api_v1")}, {},
     "'api_v1' is not a valid Kubernetes port"),
    ({INFERENCE_PORTS: INFERENCE_PORTS.replace("api", "inferenceapiport"),
      INFERENCE_KEYS: INFERENCE_KEYS.replace("api", "inferenceapiport")}, {}, "at most 15"),
])
def test_names_kubernetes_refuses_are_usage_errors_and_nothing_is_written(
        tmp_path: Path, edit: dict[str, str], procfile_edit: dict[str, str],
        message: str) -> None:
    registry = load_registry(project_copy(tmp_path / "project", edit, procfile_edit))
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=message):
        write_files(render("k8s", registry), out)
    assert not out.exists()


def test_bad_namespace_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="namespace 'Prod_1'"):
        render("k8s", load_registry(REGISTRY), RenderOptions(namespace="Prod_1"))


def test_write_files_refuses_a_file_as_out_and_leaves_it_alone(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    with pytest.raises(UsageError, match="--out .*file"):
        write_files({"a": "1"}, blocker)
    assert blocker.read_text() == "keep"


def test_write_files_writes_nested_files_and_no_staging_dir_remains(tmp_path: Path) -> None:
    written = write_files({"a.txt": "1", "sub/b.txt": "2"}, tmp_path)
    assert [p.read_text() for p in written] == ["1", "2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "sub"]
