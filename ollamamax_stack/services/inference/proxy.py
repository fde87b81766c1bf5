"""Forward a request to the first node that takes it; stream the answer through unbuffered."""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from ollamamax_stack.services.common.errors import ApiError, authenticated
from ollamamax_stack.services.common.textsafe import hide_addresses
from ollamamax_stack.services.inference.pool import NodePool
from ollamamax_stack.services.routing.client import NODE_HEADER
from ollamamax_stack.services.routing.dispatch import Dispatcher
from ollamamax_stack.services.routing.node import Node
from ollamamax_stack.services.routing.policy import SchedulingPolicy
from ollamamax_stack.services.routing.wire import Response, WireError

log = logging.getLogger("ollamamax.inference")

PASSED_HEADERS = {"content-type": "Content-Type"}  # the node's header -> the one we send
# A whole answer (Content-Length known, no larger than this) goes out in one write with its
# length; anything else (NDJSON streams) is relayed chunk by chunk as it arrives.
WHOLE_ANSWER_LIMIT = 1024 * 1024


class Proxy:
    """Relays the dispatcher's node answer to the client; no retry once bytes flowed."""

    def __init__(self, pool: NodePool, *, connect_timeout: float = 3.0,
                 read_timeout: float = 300.0, policy: SchedulingPolicy | None = None) -> None:
        self.pool = pool
        self.dispatcher = Dispatcher(pool, connect_timeout=connect_timeout,
                                     read_timeout=read_timeout, policy=policy)

    async def start(self) -> None:
        """Open the client session."""
        await self.dispatcher.start()

    async def stop(self) -> None:
        """Close the client session."""
        await self.dispatcher.stop()

    async def forward(self, request: web.Request, model: str, path: str,
                      body: bytes) -> web.StreamResponse:
        """Answer `request` from the first candidate node for `model` that takes it."""
        async with self.dispatcher.open(model, path, body) as (node, upstream):
            return await self._relay(request, node, upstream)

    async def _relay(self, request: web.Request, node: Node,
                     upstream: Response) -> web.StreamResponse:
        headers = {name: upstream.headers[key] for key, name in PASSED_HEADERS.items()
                   if key in upstream.headers}
        headers[NODE_HEADER] = node.id
        length = upstream.content_length
        if length is not None and length <= WHOLE_ANSWER_LIMIT:
            return await self._relay_whole(node, upstream, headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        ended_line = True
        try:
            await response.prepare(request)
            async for chunk in upstream.iter_any():
                await response.write(chunk)
                ended_line = chunk.endswith(b"\n")
        except (WireError, TimeoutError) as exc:
            # Bytes have flowed, so no retry: tell the client in the stream's own format.
            message = f"node {node.id} ({node.url}) failed mid-stream: {exc or type(exc).__name__}"
            self.dispatcher.failed(node, message)
            log.warning(message)
            # Finish a cut line first, so every line stays one JSON object.
            prefix = b"" if ended_line else b"\n"
            shown = message if authenticated(request) else hide_addresses(message)
            await response.write(prefix + orjson.dumps({"error": shown}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            # The client left: closing the upstream connection cancels the node's work.
            upstream.close()
            raise
        finally:
            upstream.release()
        await response.write_eof()
        return response

    async def _relay_whole(self, node: Node, upstream: Response,
                           headers: dict[str, str]) -> web.Response:
        """A whole answer's bytes as they came, in one write (headers, body, no chunking)."""
        try:
            body = await upstream.read()
        except (WireError, TimeoutError) as exc:
            # Nothing went to the client yet, so it gets a real HTTP error.
            reason = str(exc) or type(exc).__name__
            message = f"node {node.id} ({node.url}) broke off its answer: {reason}"
            self.dispatcher.failed(node, message)
            log.warning(message)
            raise ApiError(502, message, "upstream_error") from None
        except (ConnectionResetError, asyncio.CancelledError):
            upstream.close()  # the client left: closing cancels the node's work
            raise
        finally:
            upstream.release()
        return web.Response(body=body, status=upstream.status, headers=headers)
