"""Open a request on the best node for a model, failing over to the next before the first byte."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.routing.node import Node
from ollamamax_stack.services.routing.router import Router
from ollamamax_stack.services.routing.source import NodeSource
from ollamamax_stack.services.routing.wire import ConnectError, Response, WireClient, WireError

log = logging.getLogger("ollamamax.routing")


@dataclass(frozen=True)
class Skip:
    """Why a node did not take a request; `refused` when the connect itself failed."""

    reason: str
    refused: bool = False


class Dispatcher:
    """A keep-alive client of the nodes that tries the router's candidates in turn."""

    def __init__(self, source: NodeSource, *, connect_timeout: float = 3.0,
                 read_timeout: float = 300.0) -> None:
        self.source = source
        self.router = Router(source)
        # No total timeout: a node may spend minutes loading a model before its first byte;
        # the read timeout is per wait for the next bytes.
        self.client = WireClient(connect_timeout, read_timeout)

    async def start(self) -> None:
        """Nothing to open: connections are made on first use and kept alive."""

    async def stop(self) -> None:
        """Close the idle connections."""
        self.client.close()

    async def _try(self, node: Node, path: str, body: bytes) -> Response | Skip:
        try:
            resp = await self.client.post(node.url, path, body)
        except ConnectError as exc:
            return Skip(exc.reason, refused=True)
        except TimeoutError:
            return Skip("timed out before answering")
        except WireError as exc:
            return Skip(f"disconnected before answering ({exc})")
        if resp.status >= 500:
            try:
                detail = (await resp.text())[:200].strip()
            except (WireError, TimeoutError):
                detail = ""
            resp.close()
            return Skip(f"HTTP {resp.status} {detail}".strip())
        return resp

    @contextlib.asynccontextmanager
    async def open(self, model: str, path: str,
                   body: bytes) -> AsyncIterator[tuple[Node, Response]]:
        """The first candidate node that answers, and its response (counted in flight)."""
        tried: list[str] = []
        for node in self.router.candidates(model):
            node.in_flight += 1
            node.requests += 1
            try:
                outcome = await self._try(node, path, body)
                if isinstance(outcome, Skip):
                    tried.append(f"{node.id} {node.url}: {outcome.reason}")
                    self.source.record_failure(node, outcome.reason, outcome.refused)
                    self.source.failovers += 1
                    log.warning("node %s (%s) skipped for %s: %s", node.id, node.url, path,
                                outcome.reason)
                    continue
                try:
                    yield node, outcome
                finally:
                    outcome.release()
                return
            finally:
                node.in_flight -= 1
        raise ApiError(503, f"no node could serve model {model!r}; tried: {'; '.join(tried)}",
                       "no_healthy_node")
