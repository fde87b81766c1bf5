"""A node's circuit breaker: open after N failures in a row, half-open with one request after
a cooldown, closed again by a success (times are `time.monotonic()`, passed in)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

TRIP_AFTER = 5  # failures in a row (5xx, timeouts, broken streams) that open the breaker
COOLDOWN = 10.0  # seconds an open breaker keeps the node out of routing


class BreakerState(enum.Enum):
    """Whether the node is routed to: all requests, none, or one trial request."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class Breaker:
    """Failures in a row and, once tripped, until when the node is left alone."""

    failures: int = 0
    open_until: float = 0.0  # 0 while closed
    trial: bool = False  # a half-open trial request is under way

    def state(self, now: float) -> BreakerState:
        """Closed, open (cooling down), or half-open (the cooldown is over)."""
        if not self.open_until:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now < self.open_until else BreakerState.HALF_OPEN

    def allows(self, now: float) -> bool:
        """Whether a request may go to the node now (half-open: only while no trial runs)."""
        state = self.state(now)
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN
                                                and not self.trial)

    def sent(self, now: float) -> None:
        """A request went to the node: in half-open it is the one trial."""
        if self.state(now) is BreakerState.HALF_OPEN:
            self.trial = True

    def success(self) -> None:
        """The node answered: closed, the count of failures starts again."""
        self.failures = 0
        self.open_until = 0.0
        self.trial = False

    def failure(self, now: float, trip_after: int = TRIP_AFTER,
                cooldown: float = COOLDOWN) -> bool:
        """One more failure; True when this one opened the breaker (a failed trial reopens)."""
        self.failures += 1
        was = self.state(now)
        if was is BreakerState.HALF_OPEN or (was is BreakerState.CLOSED
                                             and self.failures >= trip_after):
            self.open(now + cooldown)
            return True
        return False

    def open(self, until: float) -> None:
        """Keep the node out of routing until `until` (a trip here, or told by the table)."""
        self.open_until = max(until, self.open_until)
        self.trial = False
