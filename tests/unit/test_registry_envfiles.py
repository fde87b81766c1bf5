"""Env files: compose's semantics (interpolation, later files win, `env` wins) and port checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.ports.envfile_checks import check_env_files, value_port
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.model import Registry

REGISTRY = """\
[stack]
env_file = [".env", {{path = "local.env", required = false}}]
{stack_extra}
[services.api]
port = 21002
command = "true"
env_file = {api_files}
env = {{ MODE = "registry" }}

[services.redis]
port = 6379
env_keys = ["REDIS_PORT", "REDIS_URL"]
command = "true"
"""


def _registry(tmp_path: Path, files: dict[str, str], api_files: str = '["api.env"]',
              offset: int = 0, stack_extra: str = "") -> Registry:
    (tmp_path / "ports.toml").write_text(REGISTRY.format(api_files=api_files,
                                                         stack_extra=stack_extra))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return load_registry(tmp_path / "ports.toml", offset=offset)


def test_files_interpolate_later_ones_win_and_the_registry_has_the_last_word(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "shell")
    registry = _registry(tmp_path, {
        ".env": "GREETING=hello\nWHO=stack\nMODE=file\nPORT=1\n",
        "api.env": "WHO=api\nLINE=\"${GREETING} ${WHO} ${FROM_SHELL} ${UNSET:-dflt}\"\n"
                   "QUOTED='${GREETING}'\n",
    })
    env = service_environment(registry, registry.services["api"])
    assert env["WHO"] == "api"  # the service's file comes after the stack's
    assert env["LINE"] == "hello api shell dflt"  # the stack file's GREETING, the shell's
    assert env["QUOTED"] == "${GREETING}"  # single quotes: as written, as in compose
    assert env["MODE"] == "registry"  # the registry's `env` wins over every file
    assert env["PORT"] == "21002"  # what the stack sets wins too (and check_env_files refuses)
    redis_env = service_environment(registry, registry.services["redis"])
    assert redis_env["WHO"] == "stack" and "LINE" not in redis_env


def test_a_port_key_that_disagrees_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {
        ".env": "# the stack's\nGREETING=hi\n",
        "api.env": "A=1\nREDIS_URL=redis://localhost:6380/0\nREDIS_PORT=6379\n",
    })
    [finding] = check_env_files(registry)
    assert (finding.code, finding.line, finding.port, finding.expected) == (
        "env-file-port", 2, 6380, 6379)
    assert finding.file and finding.file.endswith("api.env")
    assert "REDIS_URL" in finding.message and "6379" in finding.message


def test_own_port_keys_are_compared_with_the_receiving_service(tmp_path: Path) -> None:
    # PORT in a stack-wide file reaches redis as well as api: wrong for redis, said once.
    registry = _registry(tmp_path, {".env": "PORT=21002\n", "api.env": ""})
    [finding] = check_env_files(registry)
    assert (finding.service, finding.line, finding.expected) == ("redis", 1, 6379)


def test_under_an_offset_files_are_compared_with_the_unshifted_ports(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {".env": "", "api.env": "PORT=21002\nREDIS_PORT=6379\n"},
                         offset=1000)
    assert check_env_files(registry) == []
    assert service_environment(registry, registry.services["api"])["PORT"] == "22002"


def test_a_missing_file_is_one_line_naming_it_and_an_optional_one_is_skipped(
        tmp_path: Path) -> None:
    registry = _registry(tmp_path, {".env": ""}, api_files='"gone.env"')
    [finding] = check_env_files(registry)
    assert "gone.env: env file not found" in finding.message
    assert "services.api.env_file" in finding.message and "\n" not in finding.message
    with pytest.raises(RegistryError, match="gone.env"):
        service_environment(registry, registry.services["api"])
    optional = _registry(tmp_path, {}, api_files='{path = "gone.env", required = false}')
    assert check_env_files(optional) == []


def test_a_line_dotenv_cannot_read_names_file_and_line(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {".env": "A=1\nthis is not an assignment\n", "api.env": ""})
    [finding] = check_env_files(registry)
    assert ".env:2: not a KEY=value line" in finding.message


@pytest.mark.parametrize(("value", "port"), [
    ("13100", 13100), ("localhost:6379", 6379), ("http://h:8080/v1", 8080),
    ("redis://:pw@127.0.0.1:6380/0", 6380), ("hello", None), ("http://host/v1", None),
    ("a b:1", None), ("1234567", None)])
def test_value_port(value: str, port: int | None) -> None:
    assert value_port(value) == port


def test_log_rotation_comes_from_the_registry(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {".env": "", "api.env": ""},
                         stack_extra="logs = { max_bytes = 65536, backups = 5 }")
    assert (registry.stack.logs.max_bytes, registry.stack.logs.backups) == (65536, 5)
    with pytest.raises(RegistryError, match=r"ports.toml:\d+: stack.logs.backups"):
        _registry(tmp_path, {}, stack_extra="logs = { backups = 101 }")
    with pytest.raises(RegistryError, match="stack.logs.max_bytes"):
        _registry(tmp_path, {}, stack_extra="logs = { max_bytes = 10 }")
