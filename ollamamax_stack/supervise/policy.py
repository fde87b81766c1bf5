"""The restart policy: how long to wait before a restart, and when to stop restarting.

Pure functions of the registry's `restart` table and a service's recorded history, so the
watcher's decisions are tested in milliseconds, without a process.
"""

from __future__ import annotations

from ollamamax_stack.registry.model import RestartPolicy
from ollamamax_stack.supervise.state import ServiceState


def backoff_delay(policy: RestartPolicy, failures: int) -> float:
    """The wait before the n-th restart in a row: doubling from `backoff`, capped."""
    return float(min(policy.backoff * 2 ** max(failures - 1, 0), policy.max_backoff))


def stable_run(entry: ServiceState, now: float, stable: float) -> bool:
    """Whether it has been ready for `stable` seconds since its latest (re)start."""
    return (entry.ready_at is not None and entry.started_at is not None
            and entry.ready_at >= entry.started_at and now - entry.ready_at >= stable)


def crash_count(entry: ServiceState, policy: RestartPolicy, now: float) -> int:
    """Crashes in a row, this one included: the count restarts only after a stable run."""
    return 1 if stable_run(entry, now, policy.stable) else entry.failures + 1


def exhausted(policy: RestartPolicy, failures: int) -> bool:
    """Whether the n-th crash in a row is past the restart limit: the service stays fatal."""
    return failures > policy.limit
