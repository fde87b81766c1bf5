"""The supervisord programs (slots) of the workers of held services (`Service.held`).

A held service with `workers = N` has 2N programs: worker i runs in slot `NAME.ia` or
`NAME.ib`. A graceful restart starts the idle slot of a worker on the same sockets, waits
until it is ready, then stops the other one, which drains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ollamamax_stack.registry.model import Service

HOLDER_PROGRAM = "_sockets"  # not a valid service name, so it never collides with one
SIDES = ("a", "b")


def worker_count(service: Service) -> int:
    """The registry's `workers`, `auto` being the number of cores."""
    if service.workers == "auto":
        return max(1, os.cpu_count() or 1)
    return service.workers


@dataclass(frozen=True)
class Slot:
    """One supervisord program of a held service."""

    service: str
    worker: int
    side: str

    @property
    def program(self) -> str:
        """The supervisord program name: `gateway.0a`."""
        return f"{self.service}.{self.worker}{self.side}"

    @property
    def worker_name(self) -> str:
        """How `status` and `restart` name the worker: `gateway:0`."""
        return f"{self.service}:{self.worker}"

    @property
    def other(self) -> Slot:
        """The worker's other slot."""
        return Slot(self.service, self.worker, SIDES[1 - SIDES.index(self.side)])


def slots(service: Service) -> list[Slot]:
    """Every slot of a held service, worker by worker."""
    return [Slot(service.name, worker, side) for worker in range(worker_count(service))
            for side in SIDES]


def parse_program(program: str) -> Slot | None:
    """The slot a supervisord program name stands for, or None for a plain program."""
    service, dot, rest = program.rpartition(".")
    if not dot or len(rest) < 2 or rest[-1] not in SIDES or not rest[:-1].isdigit():
        return None
    return Slot(service, int(rest[:-1]), rest[-1])


def parse_worker(name: str) -> tuple[str, int | None]:
    """`gateway:1` -> ("gateway", 1); `gateway` -> ("gateway", None)."""
    service, colon, index = name.partition(":")
    if colon and index.isdigit():
        return service, int(index)
    return name, None
