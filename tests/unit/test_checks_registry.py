"""Registry checks: privileged ports and the kernel's ephemeral range."""

from __future__ import annotations

from pathlib import Path

from ollamamax_stack.ports import registry_checks
from ollamamax_stack.ports.checks import check_registry
from ollamamax_stack.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "ports.toml"
    path.write_text(body)
    return load_registry(path)


def test_the_project_registry_passes() -> None:
    assert check_registry(load_registry(ROOT / "config" / "ports.toml")) == []


def test_privileged_ports_need_the_flag(tmp_path: Path) -> None:
    registry = load(tmp_path, "[services.web]\nport = 80\nexternal = true\n"
                              "[services.tls]\nport = 443\nexternal = true\nprivileged = true\n")
    found = [(f.level, f.code, f.service, f.port) for f in check_registry(registry)]
    assert found == [("error", "privileged", "web", 80)]


def test_ports_in_the_ephemeral_range_warn(tmp_path: Path) -> None:
    low, high = registry_checks.ephemeral_range() or (32768, 60999)
    registry = load(tmp_path, f"[services.web]\nport = {low}\nexternal = true\n"
                              f"[services.ok]\nport = {low - 1}\nexternal = true\n")
    found = [(f.level, f.code, f.port) for f in check_registry(registry)]
    assert found == [("warning", "ephemeral", low)]
    assert f"{low}-{high}" in check_registry(registry)[0].message


def test_the_ephemeral_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    fake = tmp_path / "range"
    fake.write_text("20000\t30000\n")
    assert registry_checks.ephemeral_range(fake) == (20000, 30000)
    assert registry_checks.ephemeral_range(tmp_path / "missing") is None
