"""How a process schedules requests onto nodes: the routing mode and its limits, from the
environment (`OLLAMAMAX_ROUTING`, `OLLAMAMAX_QUEUE_TIMEOUT`, ...), one place for each default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.routing.breaker import COOLDOWN, TRIP_AFTER
from ollamamax_stack.services.routing.queue import MAX_SIZE, TIMEOUT

ROUTING_ENV = "OLLAMAMAX_ROUTING"
SLOTS = "slots"  # stack-wide slots, a queue, warm first, breakers, tiers and weights
LEAST_IN_FLIGHT = "least-in-flight"  # the router before issue 19: this process's counts only
MODES = (SLOTS, LEAST_IN_FLIGHT)
COLD_COST = 10.0  # seconds a cold load is taken to cost (OLLAMAMAX_COLD_COST)


@dataclass(frozen=True)
class SchedulingPolicy:
    """The routing mode, the queue's limits, the breaker's, and what a cold load costs."""

    mode: str = SLOTS
    slots_dir: Path | None = None  # <run dir>/slots; None: slots counted in this process only
    queue_timeout: float = TIMEOUT
    max_queue: int = MAX_SIZE
    trip_after: int = TRIP_AFTER
    cooldown: float = COOLDOWN
    cold_cost: float = COLD_COST

    @property
    def scheduled(self) -> bool:
        """Whether slots, the queue, warm-first and breakers apply (not least-in-flight)."""
        return self.mode == SLOTS


def _whole(settings: ServiceSettings, key: str, default: int, low: int) -> int:
    value = settings.number(key, default)
    if value != int(value) or value < low:
        raise UsageError(f"environment variable {key}={value:g} must be a whole number "
                         f">= {low}")
    return int(value)


def _seconds(settings: ServiceSettings, key: str, default: float) -> float:
    value = settings.number(key, default)
    if not value >= 0:  # also false for NaN
        raise UsageError(f"environment variable {key}={value:g} must be seconds >= 0")
    return value


def scheduling_policy(settings: ServiceSettings) -> SchedulingPolicy:
    """The policy from the environment; a bad value is a usage error naming its key."""
    mode = settings.get(ROUTING_ENV, SLOTS)
    if mode not in MODES:
        raise UsageError(f"environment variable {ROUTING_ENV}={mode!r} must be one of "
                         f"{', '.join(MODES)}")
    return SchedulingPolicy(
        mode=mode, slots_dir=settings.run_dir.resolve() / "slots",
        queue_timeout=_seconds(settings, "OLLAMAMAX_QUEUE_TIMEOUT", TIMEOUT),
        max_queue=_whole(settings, "OLLAMAMAX_MAX_QUEUE", MAX_SIZE, 0),
        trip_after=_whole(settings, "OLLAMAMAX_TRIP_AFTER", TRIP_AFTER, 1),
        cooldown=_seconds(settings, "OLLAMAMAX_TRIP_COOLDOWN", COOLDOWN),
        cold_cost=_seconds(settings, "OLLAMAMAX_COLD_COST", COLD_COST))
