"""Service settings from the registry and the environment; the secret; the keys file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry import load_registry
from ollamamax_stack.services.common.apikeys import ApiKey, KeysFileError, read_keys
from ollamamax_stack.services.common.secret import SecretError, ensure_secret
from ollamamax_stack.services.common.settings import build_settings

REGISTRY = Path(__file__).resolve().parents[2] / "config" / "ports.toml"


def test_registry_values_overlaid_by_environment() -> None:
    registry = load_registry(REGISTRY, offset=100)
    settings = build_settings("inference", ["main"], registry, {})
    assert settings.ports == {"api": 8180, "web": 8181}
    assert settings.url_of("ollama") == "http://127.0.0.1:11534"
    assert "http://localhost:13200" in settings.cors  # the registry's cors, shifted
    overlaid = build_settings("gateway", ["main"], registry,
                              {"PORT": "9999", "OLLAMAMAX_INFERENCE_URL": "http://x:1"})
    assert overlaid.port == 9999 and overlaid.url_of("inference") == "http://x:1"
    fallback = build_settings("fallback", ["main"], registry, {})
    assert fallback.port == 13202 and fallback.name == "fallback"


def test_environment_alone_and_bad_ports() -> None:
    assert build_settings("hub", ["main"], None, {"PORT": "5000"}).port == 5000
    with pytest.raises(UsageError, match="set PORT"):
        build_settings("hub", ["main"], None, {})
    with pytest.raises(UsageError, match="PORT='x'"):
        build_settings("hub", ["main"], None, {"PORT": "x"})
    with pytest.raises(UsageError, match="PORT_WEB"):
        build_settings("inference", ["api", "web"], None, {"PORT": "1"})


def test_secret_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "run" / "jwt.secret"
    first = ensure_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 32
    assert ensure_secret(path) == first
    path.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        ensure_secret(path)


def test_keys_from_env_and_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# comment\nsk-a alice\n\nsk-b\nsk-r root admin  # the operator\n")
    found = read_keys({"OLLAMAMAX_API_KEYS": "sk-c, ", "OLLAMAMAX_ADMIN_KEYS": "sk-d",
                       "OLLAMAMAX_API_KEYS_FILE": str(keys)})
    assert found["sk-a"] == ApiKey("alice", "user") and found["sk-r"] == ApiKey("root", "admin")
    assert set(found) == {"sk-a", "sk-b", "sk-c", "sk-d", "sk-r"}
    assert found["sk-d"].role == "admin" and found["sk-c"].role == "user"
    with pytest.raises(KeysFileError, match="cannot read the API keys file"):
        read_keys({"OLLAMAMAX_API_KEYS_FILE": str(tmp_path / "missing")})
    keys.write_text("sk-a alice root\n")
    with pytest.raises(KeysFileError, match=r"keys:1: expected '<key> \[<name> \[user\|admin\]\]'"):
        read_keys({"OLLAMAMAX_API_KEYS_FILE": str(keys)})


def test_registry_hosts_reach_the_settings_and_bad_ones_are_refused(tmp_path: Path) -> None:
    from ollamamax_stack.errors import RegistryError

    config = tmp_path / "ports.toml"
    config.write_text('[stack]\nhosts = ["OllamaMax.lan"]\n'
                      '[services.gateway]\nport = 13100\ncommand = "true"\nhosts = ["10.0.0.5"]\n')
    settings = build_settings("gateway", ["main"], load_registry(config), {})
    assert settings.hosts == ["ollamamax.lan", "10.0.0.5", "gateway"]  # and its own name
    overlaid = build_settings("gateway", ["main"], load_registry(config),
                              {"OLLAMAMAX_HOSTS": "a.lan, b.lan"})
    assert overlaid.hosts == ["a.lan", "b.lan", "gateway"]
    config.write_text('[stack]\nhosts = ["http://evil.example:80"]\n'
                      '[services.gateway]\nport = 13100\ncommand = "true"\n')
    with pytest.raises(RegistryError, match="hosts"):
        load_registry(config)


def test_urls_and_password_files_only_for_the_active_profile() -> None:
    from ollamamax_stack.registry.environ import service_environment

    default = load_registry(REGISTRY)
    env = service_environment(default, default.services["gateway"])
    assert "OLLAMAMAX_INFERENCE_URL" in env
    assert not {"OLLAMAMAX_REDIS_URL", "OLLAMAMAX_POSTGRES_URL",
                "OLLAMAMAX_REDIS_PASSWORD_FILE"} & set(env)
    full = load_registry(REGISTRY, profile="full")
    env = service_environment(full, full.services["gateway"])
    assert env["OLLAMAMAX_REDIS_URL"] == "redis://127.0.0.1:6379"
    assert env["OLLAMAMAX_REDIS_PASSWORD_FILE"] == str(full.run_dir / "redis.password")
    assert env["OLLAMAMAX_POSTGRES_PASSWORD_FILE"] == str(full.run_dir / "postgres.password")
