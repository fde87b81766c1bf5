"""Open a request on the best node for a model, failing over to the next before the first byte."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.inference.node import Node
from ollamamax_stack.services.inference.pool import describe_error
from ollamamax_stack.services.inference.router import Router
from ollamamax_stack.services.routing.source import NodeSource

log = logging.getLogger("ollamamax.routing")

JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Skip:
    """Why a node did not take a request; `refused` when the connect itself failed."""

    reason: str
    refused: bool = False


class Dispatcher:
    """A keep-alive client of the nodes that tries the router's candidates in turn."""

    def __init__(self, source: NodeSource, *, connect_timeout: float = 3.0,
                 read_timeout: float = 300.0, per_node: int = 256) -> None:
        self.source = source
        self.router = Router(source)
        # No total timeout: a node may spend minutes loading a model before its first byte.
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                             sock_read=read_timeout)
        self.per_node = per_node
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the client session (many keep-alive connections per node)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=self.per_node),
            timeout=self.timeout, auto_decompress=False)

    async def stop(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()

    async def _try(self, node: Node, path: str, body: bytes) -> aiohttp.ClientResponse | Skip:
        assert self._session is not None, "dispatcher not started"
        try:
            resp = await self._session.post(node.url + path, data=body, headers=JSON_HEADERS)
        except TimeoutError:
            return Skip("timed out before answering")
        except aiohttp.ClientConnectorError as exc:
            return Skip(describe_error(exc), refused=True)
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            return Skip(describe_error(exc))
        if resp.status >= 500:
            try:
                detail = (await resp.text())[:200].strip()
            except aiohttp.ClientError:
                detail = ""
            resp.close()
            return Skip(f"HTTP {resp.status} {detail}".strip())
        return resp

    @contextlib.asynccontextmanager
    async def open(self, model: str, path: str,
                   body: bytes) -> AsyncIterator[tuple[Node, aiohttp.ClientResponse]]:
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
                    log.warning("node %s skipped for %s: %s", node.id, path, outcome.reason)
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
