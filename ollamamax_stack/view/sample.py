"""CPU and memory of the stack's processes, sampled with psutil between two looks."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Sample:
    """One process as last sampled: CPU % of one core since the previous look, resident bytes,
    and when it was created (wall clock)."""

    cpu: float | None  # None on the first look: there is no interval yet
    rss: int
    created: float


class Sampler:
    """Keeps each process it has seen, so the next look gives CPU over the interval between."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._primed: set[int] = set()

    def sample(self, pids: Iterable[int]) -> dict[int, Sample]:
        """pid -> its sample now; pids that are gone are left out (and forgotten)."""
        wanted = set(pids)
        for pid in list(self._procs):
            if pid not in wanted:
                del self._procs[pid]
                self._primed.discard(pid)
        found: dict[int, Sample] = {}
        for pid in wanted:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    cpu = proc.cpu_percent(None)  # since the previous call on this object
                    found[pid] = Sample(cpu if pid in self._primed else None,
                                        proc.memory_info().rss, proc.create_time())
                self._primed.add(pid)
            except psutil.Error:
                self._procs.pop(pid, None)
                self._primed.discard(pid)
        return found

    def sample_over(self, pids: Iterable[int], seconds: float) -> dict[int, Sample]:
        """Two looks `seconds` apart: the CPU of the interval, for a one-shot table."""
        wanted = list(pids)
        if not wanted:
            return {}
        self.sample(wanted)
        time.sleep(seconds)
        return self.sample(wanted)
