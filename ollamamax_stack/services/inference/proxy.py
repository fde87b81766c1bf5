"""Forward a request to the first node that takes it; stream the answer through unbuffered."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError, authenticated
from ollamamax_stack.services.common.inference_client import NODE_HEADER
from ollamamax_stack.services.common.textsafe import hide_addresses
from ollamamax_stack.services.inference.node import Node
from ollamamax_stack.services.inference.pool import NodePool, describe_error
from ollamamax_stack.services.inference.router import Router

log = logging.getLogger("ollamamax.inference")

PASSED_HEADERS = ("Content-Type",)
JSON_HEADERS = {"Content-Type": "application/json"}
# A whole answer (Content-Length known, no larger than this) goes out in one write with its
# length; anything else (NDJSON streams) is relayed chunk by chunk as it arrives.
WHOLE_ANSWER_LIMIT = 1024 * 1024


class Proxy:
    """Tries the router's candidates in turn until one answers; no retry once bytes flowed."""

    def __init__(self, pool: NodePool, router: Router, *, connect_timeout: float = 3.0,
                 read_timeout: float = 300.0) -> None:
        self.pool = pool
        self.router = router
        # No total timeout: a node may spend minutes loading a model before its first byte.
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                             sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the client session (many keep-alive connections per node)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=256),
            timeout=self.timeout, auto_decompress=False)

    async def stop(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()

    async def _open(self, node: Node, path: str, body: bytes) -> aiohttp.ClientResponse | str:
        """The node's response, or why it was skipped (refused, timed out, 5xx)."""
        assert self._session is not None
        try:
            resp = await self._session.post(node.url + path, data=body, headers=JSON_HEADERS)
        except TimeoutError:
            return "timed out before answering"
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            return describe_error(exc)
        if resp.status >= 500:
            try:
                detail = (await resp.text())[:200].strip()
            except aiohttp.ClientError:
                detail = ""
            resp.close()
            return f"HTTP {resp.status} {detail}".strip()
        return resp

    async def forward(self, request: web.Request, model: str, path: str,
                      body: bytes) -> web.StreamResponse:
        """Answer `request` from the first candidate node for `model` that takes it."""
        tried: list[str] = []
        for node in self.router.candidates(model):
            node.in_flight += 1
            node.requests += 1
            try:
                outcome = await self._open(node, path, body)
                if isinstance(outcome, str):
                    tried.append(f"{node.id} {node.url}: {outcome}")
                    self.pool.record_failure(node, outcome)
                    self.pool.failovers += 1
                    log.warning("node %s skipped for %s: %s", node.id, path, outcome)
                    continue
                return await self._relay(request, node, outcome)
            finally:
                node.in_flight -= 1
        raise ApiError(503, f"no node could serve model {model!r}; tried: {'; '.join(tried)}",
                       "no_healthy_node")

    async def _relay(self, request: web.Request, node: Node,
                     upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        headers = {k: upstream.headers[k] for k in PASSED_HEADERS if k in upstream.headers}
        headers[NODE_HEADER] = node.id
        length = upstream.content_length
        if length is not None and length <= WHOLE_ANSWER_LIMIT:
            return await self._relay_whole(node, upstream, headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        ended_line = True
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                ended_line = chunk.endswith(b"\n")
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError, TimeoutError) as exc:
            # Bytes have flowed, so no retry: tell the client in the stream's own format.
            node.errors += 1
            message = f"node {node.id} ({node.url}) failed mid-stream: {exc or type(exc).__name__}"
            log.warning(message)
            # Finish a cut line first, so every line stays one JSON object.
            prefix = "" if ended_line else "\n"
            shown = message if authenticated(request) else hide_addresses(message)
            await response.write((prefix + json.dumps({"error": shown}) + "\n").encode())
        except (ConnectionResetError, asyncio.CancelledError):
            # The client left: closing the upstream connection cancels the node's work.
            upstream.close()
            raise
        finally:
            upstream.release()
        await response.write_eof()
        return response

    async def _relay_whole(self, node: Node, upstream: aiohttp.ClientResponse,
                           headers: dict[str, str]) -> web.Response:
        """A whole answer's bytes as they came, in one write (headers, body, no chunking)."""
        try:
            body = await upstream.read()
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError, TimeoutError) as exc:
            # Nothing went to the client yet, so it gets a real HTTP error.
            node.errors += 1
            reason = str(exc) or type(exc).__name__
            message = f"node {node.id} ({node.url}) broke off its answer: {reason}"
            log.warning(message)
            raise ApiError(502, message, "upstream_error") from None
        except (ConnectionResetError, asyncio.CancelledError):
            upstream.close()  # the client left: closing cancels the node's work
            raise
        finally:
            upstream.release()
        return web.Response(body=body, status=upstream.status, headers=headers)
