"""The registry's `[services.ollama] models`: pulled onto every node that lacks one.

At start (`up`) every node is looked at once it answers; a node that joins later (`POST
/api/v1/nodes`), or comes back after being down, is looked at when it turns healthy. What is
pulling and what failed is in the service's readiness reasons (degraded, naming the node), so
`ollamamax status` and `/health/ready` say it; the log says it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.inference.pool import NodePool
from ollamamax_stack.services.inference.pulls import NodeFailure, pull_from
from ollamamax_stack.services.routing.node import Node, model_key

log = logging.getLogger("ollamamax.inference")

MODELS_ENV = "OLLAMAMAX_OLLAMA_MODELS"  # set from the registry (registry/environ.py)
WAIT = 30.0  # the longest wait for a change of the pool before looking again


def wanted_models(settings: ServiceSettings) -> list[str]:
    """The models every node should hold, from `$OLLAMAMAX_OLLAMA_MODELS` (comma-separated)."""
    return [model_key(m) for m in settings.get(MODELS_ENV).split(",") if m.strip()]


class ModelEnsurer:
    """Pulls the wanted models onto each node that turns healthy without them."""

    def __init__(self, pool: NodePool, models: list[str], *, read_timeout: float = 300.0) -> None:
        self.pool = pool
        self.models = models
        self.read_timeout = read_timeout
        self.pulling: dict[tuple[str, str], Node] = {}  # (node id, model) -> node
        self.failed: dict[tuple[str, str], str] = {}  # (node id, model) -> the reason
        self._up: set[str] = set()  # nodes seen healthy since they last were down
        self._task: asyncio.Task[None] | None = None
        self._pulls: set[asyncio.Task[None]] = set()

    def reasons(self) -> list[str]:
        """What the readiness shows: each pull under way and each that failed."""
        shown = [f"pulling {model} onto node {node.id} ({node.name})"
                 for (_, model), node in self.pulling.items()]
        return shown + [f"pull of {model} (registry [services.ollama] models) failed on "
                        f"{reason}" for (_, model), reason in self.failed.items()]

    def summary(self) -> str:
        """The reasons counted, for callers who may not see node addresses."""
        return (f"registry models: {len(self.pulling)} pulls onto nodes under way, "
                f"{len(self.failed)} failed (details for key holders)")

    def look(self) -> None:
        """Start a pull for each wanted model missing on a node that just turned healthy."""
        healthy = {n.id for n in self.pool.healthy()}
        self._up &= healthy
        for node in self.pool.healthy():
            if node.id in self._up:
                continue
            self._up.add(node.id)
            for model in self.models:
                if model not in node.models and (node.id, model) not in self.pulling:
                    self._start(node, model)
        for node_id, model in list(self.failed):
            holder = self.pool.nodes.get(node_id)
            if holder is None or model in holder.models:  # removed, or pulled since by hand
                del self.failed[(node_id, model)]

    def _start(self, node: Node, model: str) -> None:
        self.pulling[(node.id, model)] = node
        self.failed.pop((node.id, model), None)
        task = asyncio.get_running_loop().create_task(self._pull(node, model))
        self._pulls.add(task)
        task.add_done_callback(self._pulls.discard)

    async def _pull(self, node: Node, model: str) -> None:
        log.info("pulling %s onto node %s (%s): the registry's [services.ollama] models",
                 model, node.id, node.url)
        try:
            async for _ in pull_from(self.pool.session, node, model,
                                     read_timeout=self.read_timeout):
                pass
        except NodeFailure as failure:
            self.failed[(node.id, model)] = str(failure)
            log.warning("pull of %s failed on %s", model, failure)
        else:
            log.info("pulled %s onto node %s (%s)", model, node.id, node.url)
            await self.pool.check(node)
        finally:
            self.pulling.pop((node.id, model), None)

    async def _loop(self) -> None:
        generation = -1
        while True:
            self.look()
            generation = await self.pool.wait_change(generation, WAIT)

    def start(self) -> None:
        """Watch the pool in the background (nothing to do without wanted models)."""
        if self.models:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop watching and end the pulls under way."""
        tasks = [t for t in (self._task, *self._pulls) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
