"""Choose port offsets that are free on this machine, so test stacks never collide."""

from __future__ import annotations

import random
from collections.abc import Iterable

from ollamamax_stack.hostports import bindable

LOW, HIGH = 1025, 32000  # below the kernel's usual ephemeral range (32768-60999)


def free_offset(ports: Iterable[int], *, host: str = "127.0.0.1", tries: int = 200) -> int:
    """An offset N such that every port + N is in [LOW, HIGH] and bindable now."""
    base = sorted(set(ports))
    lo, hi = LOW - base[0], HIGH - base[-1]
    if lo > hi:
        raise RuntimeError(f"ports {base[0]}..{base[-1]} span too much to shift into {LOW}-{HIGH}")
    rng = random.Random()
    for _ in range(tries):
        offset = rng.randint(lo, hi)
        if all(bindable(host, p + offset) and bindable("::1", p + offset) for p in base):
            return offset
    raise RuntimeError("no free offset found")


def free_port(host: str = "127.0.0.1") -> int:
    """A single free port below the ephemeral range."""
    return 0 + free_offset([LOW], host=host) + LOW
