"""Dependency layers, stop order and closures."""

from __future__ import annotations

import pytest

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry import load_registry, start_layers, stop_order, with_dependencies
from tests.conftest import REGISTRY

DEPS = {"gateway": ["inference"], "hub": ["inference"], "inference": ["ollama"], "ollama": []}


def test_layers_put_dependencies_first() -> None:
    assert start_layers(DEPS) == [["ollama"], ["inference"], ["gateway", "hub"]]
    assert stop_order(DEPS) == [["gateway", "hub"], ["inference"], ["ollama"]]


def test_closure_takes_what_a_service_needs_and_nothing_more() -> None:
    assert with_dependencies(DEPS, ["gateway"]) == ["gateway", "inference", "ollama"]
    assert with_dependencies(DEPS, ["inference"]) == ["inference", "ollama"]


def test_cycle_is_refused_with_its_path() -> None:
    with pytest.raises(RegistryError, match=r"a -> b -> c -> a"):
        start_layers({"a": ["b"], "b": ["c"], "c": ["a"]})


def test_default_registry_layers() -> None:
    registry = load_registry(REGISTRY, profile="full")
    layers = start_layers({s.name: s.depends_on for s in registry.active})
    flat = [name for layer in layers for name in layer]
    assert flat.index("inference") > flat.index("ollama")
    assert flat.index("gateway") > flat.index("inference")
    assert flat.index("prometheus") > flat.index("gateway")
