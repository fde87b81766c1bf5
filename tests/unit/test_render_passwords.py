"""compose and k8s: PostgreSQL and redis need the generated passwords, the services get them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.targets import RenderOptions, render
from tests.render_project import ROOT

REGISTRY = ROOT / "config" / "ports.toml"
OWN = ("gateway", "hub", "fallback", "inference")
COMPOSE_FILES = {"postgres": "/run/secrets/postgres.password",
                 "redis": "/run/secrets/redis.password"}
K8S_DIR = "/run/secrets/ollamamax"


def compose(profile: str = "full") -> dict[str, Any]:
    files = render("compose", load_registry(REGISTRY, profile=profile))
    text = files["docker-compose.yml"]
    assert "trust" not in text
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def k8s(options: RenderOptions | None = None) -> dict[str, list[dict[str, Any]]]:
    files = render("k8s", load_registry(REGISTRY, profile="full"), options)
    assert not any("trust" in text for text in files.values())
    return {name: list(yaml.safe_load_all(text)) for name, text in files.items()}


def container(documents: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    pod = documents[f"{name}.yaml"][0]["spec"]["template"]["spec"]
    found: dict[str, Any] = pod["containers"][0]
    found["_volumes"] = pod.get("volumes", [])
    return found


def env_of(entry: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in entry.get("env", [])}


def test_compose_declares_the_password_files_as_secrets() -> None:
    assert compose()["secrets"] == {
        "postgres.password": {"file": "./secrets/postgres.password"},
        "redis.password": {"file": "./secrets/redis.password"}}


def test_compose_postgres_reads_its_password_file_and_asks_for_scram() -> None:
    postgres = compose()["services"]["postgres"]
    assert postgres["secrets"] == ["postgres.password"]
    env = postgres["environment"]
    assert env["POSTGRES_PASSWORD_FILE"] == COMPOSE_FILES["postgres"]
    assert "POSTGRES_HOST_AUTH_METHOD" not in env or env["POSTGRES_HOST_AUTH_METHOD"] == (
        "scram-sha-256")
    assert "--auth-host=scram-sha-256" in env["POSTGRES_INITDB_ARGS"]
    assert "--auth-local=scram-sha-256" in env["POSTGRES_INITDB_ARGS"]


def test_compose_redis_requires_the_password_and_its_healthcheck_gives_it() -> None:
    redis = compose()["services"]["redis"]
    assert redis["secrets"] == ["redis.password"]
    command = " ".join(redis["command"])
    assert "requirepass" in command and COMPOSE_FILES["redis"] in command
    # `$$`: compose hands the shell a `$`, not an interpolated (empty) variable.
    assert "$$(cat" in command and "$(cat" not in command.replace("$$(cat", "")
    health = " ".join(redis["healthcheck"]["test"])
    assert "REDISCLI_AUTH" in health and COMPOSE_FILES["redis"] in health and "PONG" in health


@pytest.mark.parametrize("name", OWN)
def test_compose_services_get_both_password_files(name: str) -> None:
    service = compose()["services"][name]
    assert service["secrets"] == ["postgres.password", "redis.password"]
    assert service["environment"]["OLLAMAMAX_POSTGRES_PASSWORD_FILE"] == COMPOSE_FILES["postgres"]
    assert service["environment"]["OLLAMAMAX_REDIS_PASSWORD_FILE"] == COMPOSE_FILES["redis"]


def test_compose_prometheus_and_the_default_profile_get_no_secret() -> None:
    assert "secrets" not in compose()["services"]["prometheus"]
    default = compose("default")
    assert "secrets" not in default
    for service in default["services"].values():
        assert "secrets" not in service
        assert not any(k.endswith("_PASSWORD_FILE") for k in service.get("environment", {}))


def secret_volume(entry: dict[str, Any]) -> dict[str, Any]:
    (volume,) = [v for v in entry["_volumes"] if "secret" in v]
    (mount,) = [m for m in entry["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": K8S_DIR, "readOnly": True}
    assert volume["secret"]["secretName"] == "ollamamax-passwords"
    assert volume["secret"]["defaultMode"] == 0o400
    return dict(volume["secret"])


def test_k8s_postgres_reads_only_its_password_from_the_secret() -> None:
    postgres = container(k8s(), "postgres")
    env = env_of(postgres)
    assert env["POSTGRES_PASSWORD_FILE"] == f"{K8S_DIR}/postgres.password"
    assert "--auth-host=scram-sha-256" in env["POSTGRES_INITDB_ARGS"]
    assert secret_volume(postgres)["items"] == [
        {"key": "postgres.password", "path": "postgres.password"}]


def test_k8s_redis_requires_the_password_from_the_secret() -> None:
    redis = container(k8s(), "redis")
    args = " ".join(redis["args"])
    assert "requirepass" in args and f"{K8S_DIR}/redis.password" in args
    assert secret_volume(redis)["items"] == [{"key": "redis.password", "path": "redis.password"}]


@pytest.mark.parametrize("name", OWN)
def test_k8s_services_get_both_password_files(name: str) -> None:
    service = container(k8s(), name)
    env = env_of(service)
    assert env["OLLAMAMAX_POSTGRES_PASSWORD_FILE"] == f"{K8S_DIR}/postgres.password"
    assert env["OLLAMAMAX_REDIS_PASSWORD_FILE"] == f"{K8S_DIR}/redis.password"
    assert [i["key"] for i in secret_volume(service)["items"]] == [
        "postgres.password", "redis.password"]


def test_k8s_renders_no_secret_value_unless_asked_to_generate_one() -> None:
    documents = k8s()
    kinds = {d["kind"] for docs in documents.values() for d in docs}
    assert "Secret" not in kinds
    kustomization = documents["kustomization.yaml"][0]
    assert "secretGenerator" not in kustomization
    generated = k8s(RenderOptions(generate_secrets=True))["kustomization.yaml"][0]
    assert generated["secretGenerator"] == [{
        "name": "ollamamax-passwords",
        "files": ["postgres.password=secrets/postgres.password",
                  "redis.password=secrets/redis.password"]}]
    assert generated["generatorOptions"] == {"disableNameSuffixHash": True}
