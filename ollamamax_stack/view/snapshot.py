"""One look at the running stack: its state as `status` sees it, and its processes sampled."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import observe
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.supervise.state import StackState
from ollamamax_stack.view.listening import ListeningCache
from ollamamax_stack.view.rows import Row, pids, rows
from ollamamax_stack.view.sample import Sampler

# A live view asks supervisord at least this often; in between, only when state.json changed
# or an event came (`Looker.look(full=True)`): the processes' figures are sampled every look.
FULL_EVERY = 5.0


@dataclass(frozen=True)
class Snapshot:
    """The stack at one moment, as rows."""

    stack: StackState
    rows: list[Row]
    supervision: str  # `supervisord: running (pid 1); watcher: running (pid 2)`
    reasons: list[str]
    taken: float


def take(registry: Registry, sampler: Sampler, over: float = 0.0,
         listening: ListeningCache | None = None) -> Snapshot:
    """Look now; `over` > 0 samples CPU across that many seconds (a one-shot table), else since
    the sampler's previous look (a live view, which passes its cache of who listens)."""
    current = (observe.status(registry) if listening is None
               else observe.status(registry, listening))
    return _snapshot(current, sampler, over)


def _snapshot(current: observe.StackStatus, sampler: Sampler, over: float) -> Snapshot:
    state = current.state
    shown = pids(state)
    samples = sampler.sample_over(shown, over) if over > 0 else sampler.sample(shown)
    now = time.time()
    return Snapshot(state.stack(), rows(state, samples, now), current.supervision.describe(),
                    state.reasons(), now)


class Looker:
    """A live view's looks: supervisord is asked when something may have changed, the
    processes are sampled every time (CPU over the interval since the previous look)."""

    def __init__(self, registry: Registry, full_every: float = FULL_EVERY) -> None:
        self.registry = registry
        self._state_file = RunPaths(registry.run_dir).state
        self._every = full_every
        self._sampler = Sampler()
        self._listening = ListeningCache()
        self._last: observe.StackStatus | None = None
        self._asked = 0.0
        self._stamp: tuple[int, int] | None = None
        self.asked = 0  # how many looks asked supervisord (for tests and the bench)

    def look(self, full: bool = False) -> Snapshot:
        """The stack now; `full` asks supervisord whatever the last look found."""
        now = time.monotonic()
        stamp = self._file_stamp()
        if (full or self._last is None or stamp != self._stamp
                or now - self._asked >= self._every):
            self._last = observe.status(self.registry, self._listening)
            self._asked, self._stamp = now, stamp
            self.asked += 1
        return _snapshot(self._last, self._sampler, 0.0)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            info = self._state_file.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_ino
