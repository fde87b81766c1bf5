"""One look at the running stack: its state as `status` sees it, and its processes sampled."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import observe
from ollamamax_stack.supervise.state import StackState
from ollamamax_stack.view.listening import ListeningCache
from ollamamax_stack.view.rows import Row, pids, rows
from ollamamax_stack.view.sample import Sampler


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
    state = current.state
    shown = pids(state)
    samples = sampler.sample_over(shown, over) if over > 0 else sampler.sample(shown)
    now = time.time()
    return Snapshot(state.stack(), rows(state, samples, now), current.supervision.describe(),
                    state.reasons(), now)
