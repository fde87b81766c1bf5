"""The checks of `ports check` and of `up`'s pre-flight: registry, host and drift."""

from __future__ import annotations

from ollamamax_stack.ports.drift import check_drift
from ollamamax_stack.ports.host_checks import check_host
from ollamamax_stack.ports.registry_checks import check_registry

__all__ = ["check_drift", "check_host", "check_registry"]
