"""The port registry: model, loading, profiles, offset and the dependency graph."""

from __future__ import annotations

from ollamamax_stack.registry.graph import start_layers, stop_order, with_dependencies
from ollamamax_stack.registry.loader import find_registry, load_registry
from ollamamax_stack.registry.model import Probe, Registry, RestartPolicy, Service, Stack

__all__ = [
    "Probe",
    "Registry",
    "RestartPolicy",
    "Service",
    "Stack",
    "find_registry",
    "load_registry",
    "start_layers",
    "stop_order",
    "with_dependencies",
]
