"""The stack as rows, in `status`'s order: each service, then its workers, with process figures.

One shape for the `status` table, `status --watch` and `top`, so the three always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ollamamax_stack.supervise.machine import Status, WorkerStatus
from ollamamax_stack.supervise.state import ServiceState, State
from ollamamax_stack.view.sample import Sample

COLUMNS = ("SERVICE", "STATE", "READY AFTER", "PORTS", "URL", "PID", "SLOT", "AGE",
           "RESTARTS", "CPU", "MEM")


@dataclass(frozen=True)
class Row:
    """One line of the table: a service, or one worker of a held service."""

    key: str  # the service (`gateway`) or the worker (`gateway:1`): what `restart` takes
    service: str
    state: str
    reason: str
    ready_after: str
    ports: str
    url: str
    pid: int | None
    slot: str
    age: str
    restarts: str
    cpu: str
    mem: str
    healthy: bool

    @property
    def is_worker(self) -> bool:
        """Whether the row is a worker of a held service."""
        return self.key != self.service

    @property
    def row_id(self) -> str:
        """Unique in the table: a worker's old (draining) process has a row of its own."""
        return f"{self.key}/{self.slot}" if self.is_worker else self.key

    @property
    def label(self) -> str:
        """The state as one cell: `ready`, or `failed: why`."""
        return self.state if not self.reason or self.healthy else f"{self.state}: {self.reason}"

    def cells(self) -> tuple[str, ...]:
        """The row in COLUMNS' order."""
        name = f"  {self.key}" if self.is_worker else self.key
        return (name, self.label, self.ready_after, self.ports, self.url,
                str(self.pid) if self.pid else "-", self.slot, self.age, self.restarts,
                self.cpu, self.mem)


def age(seconds: float | None) -> str:
    """`42s`, `7m03s`, `2h05m`, `3d04h`; `-` when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole // 60 % 60:02d}m"
    return f"{whole // 86400}d{whole // 3600 % 24:02d}h"


def size(rss: int | None) -> str:
    """Resident memory as `48M` or `1.2G`; `-` when unknown."""
    if rss is None:
        return "-"
    mib = rss / (1 << 20)
    return f"{mib / 1024:.1f}G" if mib >= 1024 else f"{mib:.0f}M"


def _figures(pid: int | None, samples: Mapping[int, Sample], now: float
             ) -> tuple[str, str, str]:
    """(age, cpu, mem) of a process from its sample."""
    found = samples.get(pid) if pid else None
    if found is None:
        return "-", "-", "-"
    cpu = "-" if found.cpu is None else f"{found.cpu:.1f}%"
    return age(now - found.created), cpu, size(found.rss)


def _ports(entry: ServiceState) -> str:
    return ", ".join(str(p) if n == "main" else f"{n}={p}" for n, p in entry.ports.items())


def service_row(entry: ServiceState, samples: Mapping[int, Sample], now: float) -> Row:
    """A service's own row."""
    when, cpu, mem = _figures(entry.pid, samples, now)
    if when == "-" and entry.started_at and entry.state != Status.STOPPED and not entry.external:
        when = age(now - entry.started_at)
    ready = f"{entry.ready_ms} ms" if entry.ready and entry.ready_ms is not None else "-"
    slot = entry.workers[0]["slot"] or "-" if entry.workers else "-"
    return Row(key=entry.name, service=entry.name, state=str(entry.state),
               reason=entry.reason or "", ready_after=ready, ports=_ports(entry), url=entry.url,
               pid=entry.pid, slot="external" if entry.external else slot, age=when,
               restarts=str(entry.restarts), cpu=cpu, mem=mem, healthy=entry.ready)


def worker_rows(entry: ServiceState, samples: Mapping[int, Sample], now: float) -> list[Row]:
    """A held service's workers, one row each (a draining old process too)."""
    found = []
    for worker in entry.workers:
        pid = worker["pid"]
        when, cpu, mem = _figures(pid, samples, now)
        state = str(worker["state"])
        found.append(Row(key=worker["name"], service=entry.name, state=state, reason="",
                         ready_after="", ports="", url="", pid=pid,
                         slot=worker["slot"] or "-", age=when, restarts="", cpu=cpu, mem=mem,
                         healthy=state == WorkerStatus.SERVING))
    return found


def pids(state: State) -> list[int]:
    """Every process the rows show: services' and workers'."""
    found = {e.pid for e in state.services.values() if e.pid and not e.external}
    found |= {w["pid"] for e in state.services.values() for w in e.workers if w["pid"]}
    return sorted(found)


def rows(state: State, samples: Mapping[int, Sample], now: float) -> list[Row]:
    """The table of the stack: each service in `status`'s order, its workers below it."""
    found: list[Row] = []
    for entry in state.services.values():
        found.append(service_row(entry, samples, now))
        found.extend(worker_rows(entry, samples, now))
    return found
