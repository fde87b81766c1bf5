"""Fuzz the loader: whatever TOML it is given, only RegistryError may escape."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry import load_registry

KEYS = st.sampled_from([
    "port", "ports", "depends_on", "external", "optional", "privileged", "readiness", "liveness",
    "http", "tcp", "exec", "log", "timeout", "period", "profiles", "env_keys", "cors", "command",
    "host", "shift", "restart", "limit", "container_port", "stack", "services", "name", "root",
    "procfile", "drift_files", "api", "web", "main", "x",
    "logs", "max_bytes", "backups", "env_file", "path", "required",
])
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(),
    st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["api", "db", "/health", "Procfile", "full", "127.0.0.1", "a\0b", "\0", "/",
                     "..", "/dev/null", "::1", "0.0.0.0", "[", "(?P<", ".env", ""]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=25,
)
SERVICE = st.dictionaries(KEYS, VALUES, max_size=6)
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "stack": st.dictionaries(KEYS, VALUES, max_size=4),
        "services": st.dictionaries(st.sampled_from(["api", "db", "web", "Bad", "x-y"]), SERVICE,
                                    max_size=4),
    },
)


def _load(text: bytes, offset: int, profile: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ports.toml"
        path.write_bytes(text)
        (Path(tmp) / "Procfile").write_text("api: true\n")
        try:
            load_registry(path, offset=offset, profile=profile)
        except RegistryError as exc:
            assert str(exc) and "\n" not in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENT, st.integers(-70000, 70000), st.sampled_from([None, "default", "full", "x"]))
def test_structured_documents_raise_only_registry_errors(
        document: dict[str, Any], offset: int, profile: str | None) -> None:
    _load(tomli_w.dumps(document).encode(), offset, profile)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_raise_only_registry_errors(raw: bytes) -> None:
    _load(raw, 0, None)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.sampled_from(["[", "{a=", "[[", "x = ["]))
def test_deep_nesting(depth: int, opener: str) -> None:
    _load((f"x = {opener * depth}" if not opener.startswith("x") else opener * depth).encode(),
          0, None)


@settings(max_examples=150, deadline=None)
@given(st.integers(-(2**70), 2**70), st.integers(-(2**70), 2**70))
def test_port_and_offset_extremes(port: int, offset: int) -> None:
    document = {"services": {"api": {"port": port, "external": True}}}
    try:
        text = tomli_w.dumps(document).encode()
    except (ValueError, OverflowError):
        return  # TOML cannot represent integers beyond 64 bits
    _load(text, max(-(2**31), min(2**31, offset)), None)
