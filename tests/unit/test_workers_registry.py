"""`workers` and `env` in the registry, and how held services map onto supervisord slots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.handoff.slots import (
    Slot,
    parse_program,
    parse_worker,
    slots,
    worker_count,
)
from ollamamax_stack.registry import load_registry
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.supervise.config import holder_program, programs

STACK = """\
[stack]
name = "t"

[services.gateway]
port = 9100
command = "ollamamax serve gateway"
{gateway}

[services.inference]
port = 9101
command = "ollamamax serve inference"
{inference}

[services.plain]
port = 9102
command = "python3 -m http.server $PORT"
{plain}
"""


def registry_file(tmp_path: Path, gateway: str = "", inference: str = "", plain: str = "") -> Path:
    path = tmp_path / "ports.toml"
    path.write_text(STACK.format(gateway=gateway, inference=inference, plain=plain))
    return path


def test_workers_default_to_one_and_auto_is_the_core_count(tmp_path: Path) -> None:
    registry = load_registry(registry_file(tmp_path, gateway='workers = "auto"'))
    assert worker_count(registry.services["gateway"]) == max(1, os.cpu_count() or 1)
    assert worker_count(registry.services["inference"]) == 1
    two = load_registry(registry_file(tmp_path, gateway="workers = 2"))
    assert [s.program for s in slots(two.services["gateway"])] == [
        "gateway.0a", "gateway.0b", "gateway.1a", "gateway.1b"]


def test_inference_is_kept_at_one_worker_with_a_one_line_reason(tmp_path: Path) -> None:
    path = registry_file(tmp_path, inference="workers = 2")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert "services.inference.workers" in message and "in-flight" in message
    assert f"{path.name}:" in message and "\n" not in message
    done = subprocess.run([sys.executable, "-m", "ollamamax_stack", "--config", str(path),
                           "ports", "list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_workers_need_a_service_that_takes_held_sockets(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(registry_file(tmp_path, plain="workers = 3"))
    assert "services.plain.workers" in str(info.value) and "ollamamax serve" in str(info.value)
    for bad in ("workers = 0", 'workers = "many"', "workers = 1.5"):
        with pytest.raises(RegistryError) as info:
            load_registry(registry_file(tmp_path, gateway=bad))
        assert "services.gateway.workers" in str(info.value)


def test_env_reaches_the_service_and_rejects_line_breaks(tmp_path: Path) -> None:
    registry = load_registry(registry_file(tmp_path, gateway='env = { MODE = "fast" }'))
    assert service_environment(registry, registry.services["gateway"])["MODE"] == "fast"
    with pytest.raises(RegistryError) as info:
        load_registry(registry_file(tmp_path, gateway='env = { MODE = "a\\nb" }'))
    assert "services.gateway.env" in str(info.value)


def test_held_services_get_slots_and_the_holder_others_keep_their_program(
        tmp_path: Path) -> None:
    registry = load_registry(registry_file(tmp_path, gateway="workers = 2"),
                             run_dir=tmp_path / "run")
    assert registry.services["gateway"].held
    assert not registry.services["plain"].held
    found = {p.name: p for p in programs(registry)}
    assert set(found) == {"gateway.0a", "gateway.0b", "gateway.1a", "gateway.1b",
                          "inference.0a", "inference.0b", "plain"}
    env = found["gateway.1b"].environment
    assert env["OLLAMAMAX_SLOT"] == "gateway.1b"
    assert env["OLLAMAMAX_HANDOFF"] == str(tmp_path / "run" / "sockets.sock")
    assert "OLLAMAMAX_HANDOFF" not in found["plain"].environment
    holder = holder_program(registry)
    assert holder is not None and "ollamamax_stack.handoff.holder" in holder.command


def test_slot_and_worker_names_round_trip() -> None:
    slot = Slot("gateway", 1, "b")
    assert slot.program == "gateway.1b" and slot.worker_name == "gateway:1"
    assert slot.other == Slot("gateway", 1, "a")
    assert parse_program("gateway.1b") == slot
    assert parse_program("redis") is None and parse_program("_sockets") is None
    assert parse_worker("gateway:1") == ("gateway", 1)
    assert parse_worker("gateway") == ("gateway", None)


def test_held_is_decided_at_load_from_the_command_and_not_read_from_the_toml(
        tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(STACK.format(gateway="", inference="", plain="").replace(
        'command = "ollamamax serve gateway"', "command = \"ollamamax 'serve' gateway --x\""))
    registry = load_registry(path)
    assert registry.services["gateway"].own == "gateway" and registry.services["gateway"].held
    assert registry.services["plain"].own is None and not registry.services["plain"].held
    with pytest.raises(RegistryError) as info:
        load_registry(registry_file(tmp_path, plain='own = "gateway"'))
    assert "services.plain.own" in str(info.value)


def test_a_worker_limit_comes_from_the_services_own_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ollamamax_stack.services import inference
    from ollamamax_stack.services.limits import WORKER_LIMITS

    assert WORKER_LIMITS["inference"] == (inference.MAX_WORKERS, inference.MAX_WORKERS_WHY)
    monkeypatch.setitem(WORKER_LIMITS, "gateway", (2, "a test limit"))
    assert load_registry(registry_file(tmp_path, gateway="workers = 2")).services[
        "gateway"].workers == 2
    for bad in ("workers = 3", 'workers = "auto"'):
        with pytest.raises(RegistryError) as info:
            load_registry(registry_file(tmp_path, gateway=bad))
        assert "services.gateway.workers" in str(info.value)
        assert "not supported for gateway: a test limit" in str(info.value)


def test_reading_the_worker_limits_imports_no_service_module(tmp_path: Path) -> None:
    path = registry_file(tmp_path, gateway="workers = 2")
    code = ("import sys; from pathlib import Path; from ollamamax_stack.registry import "
            f"load_registry; load_registry(Path({str(path)!r})); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('ollamamax_stack.s')"
            " or m in ('aiohttp', 'orjson'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["ollamamax_stack.services", "ollamamax_stack.services.inference",
                                   "ollamamax_stack.services.limits"]
