"""Which pid listens on each port, remembered between a live view's looks.

A scan of the host's sockets (`groups.listening_pids`) costs tens of milliseconds of CPU on a
busy host: once a second it alone would be most of `top`'s budget. The answer only changes
when a process of the stack is replaced, so it is scanned again when a pid it gave has died,
when the ports asked for change, or (for a port nobody listened on) after STALE seconds.
"""

from __future__ import annotations

import time

import psutil

from ollamamax_stack.supervise import groups
from ollamamax_stack.supervise.observe import Listening

STALE = 10.0


class ListeningCache:
    """A `Listening` that scans only when its last answer may be wrong."""

    def __init__(self, scan: Listening = groups.listening_pids, stale: float = STALE) -> None:
        self._scan = scan
        self._stale = stale
        self._ports: set[int] | None = None
        self._found: dict[int, int] = {}
        self._at = 0.0
        self.scans = 0

    def __call__(self, ports: set[int]) -> dict[int, int]:
        now = time.monotonic()
        if (ports != self._ports
                or any(not psutil.pid_exists(pid) for pid in set(self._found.values()))
                or (ports - set(self._found) and now - self._at >= self._stale)):
            self._ports, self._found, self._at = set(ports), self._scan(ports), now
            self.scans += 1
        return dict(self._found)
