"""`--since T` / `--until T` of `events` and `logs`: seconds ago, or an ISO time."""

from __future__ import annotations

import math
from datetime import datetime

from ollamamax_stack.errors import UsageError


def since_time(text: str, now: float) -> float:
    """`--since`: seconds ago (`30`, `5m`, `2h`, `1d`) or an ISO time (`2026-12-03T12:00`)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        ago = float(number) * units[unit]
        if math.isfinite(ago):
            return now - ago
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--since {text!r}: give seconds ago (30, 5m, 2h, 1d) or an ISO time "
                         "(2026-12-03T12:00:00)") from None
