"""A node's slots, stack-wide: one `flock`ed file per slot in the run dir.

Every process of one stack (each gateway worker, the hub, the fallback, the inference
service) takes a slot of a node before sending it a request, by locking one of the files
`<run dir>/slots/<node id>/<n>` without waiting. The kernel holds the lock: no round trip to
another process, and a process that dies (even by SIGKILL) frees its slots at once, since
its files close. `flock` locks belong to an open file, not to the process (unlike `fcntl`
record locks), so two opens in two processes exclude each other; inside one process the
slots it holds are also kept in a set, so one descriptor per slot file suffices.
Across machines the files do not reach: several gateways on several hosts would need a
shared store (redis) instead, which this module does not do.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from ollamamax_stack.services.routing.node import Node


class Lease:
    """One slot of one node, held until `release()` (once; later calls do nothing)."""

    __slots__ = ("node", "_index", "_slots")

    def __init__(self, slots: SlotLocks, node: Node, index: int) -> None:
        self.node = node
        self._index = index
        self._slots: SlotLocks | None = slots

    def release(self) -> None:
        """Give the slot back."""
        if self._slots is not None:
            self._slots.give_back(self.node.id, self._index)
            self._slots = None


class SlotLocks:
    """The slots this process holds, and the lock files that make them stack-wide."""

    def __init__(self, directory: Path | None,
                 on_release: Callable[[], None] | None = None) -> None:
        self.directory = directory  # None: slots count within this process only
        self.on_release = on_release
        self._held: dict[str, set[int]] = {}
        self._files: dict[str, list[int]] = {}

    def _fds(self, node: Node) -> list[int]:
        fds = self._files.get(node.id)
        if fds is None or len(fds) < node.slots:
            assert self.directory is not None
            folder = self.directory / node.id
            folder.mkdir(parents=True, exist_ok=True)
            fds = fds or []
            for index in range(len(fds), node.slots):
                fds.append(os.open(folder / str(index), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                   0o600))
            self._files[node.id] = fds
        return fds

    def take(self, node: Node) -> Lease | None:
        """A free slot of `node`, or None when the whole stack holds all of them."""
        held = self._held.setdefault(node.id, set())
        if len(held) >= node.slots:
            return None
        if self.directory is None:
            index = min(set(range(node.slots)) - held)
            held.add(index)
            return Lease(self, node, index)
        fds = self._fds(node)
        for index in range(node.slots):
            if index in held:
                continue
            try:
                fcntl.flock(fds[index], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process of the stack holds it
            held.add(index)
            return Lease(self, node, index)
        return None

    def give_back(self, node_id: str, index: int) -> None:
        """Unlock one slot (called by its Lease)."""
        self._held[node_id].discard(index)
        fds = self._files.get(node_id)
        if fds is not None and index < len(fds):
            fcntl.flock(fds[index], fcntl.LOCK_UN)
        if self.on_release is not None:
            self.on_release()

    def held(self, node_id: str) -> int:
        """Slots of the node this process holds now."""
        return len(self._held.get(node_id, ()))

    def close(self) -> None:
        """Close every lock file (which frees any slot still held)."""
        for fds in self._files.values():
            for fd in fds:
                os.close(fd)
        self._files.clear()
        self._held.clear()
