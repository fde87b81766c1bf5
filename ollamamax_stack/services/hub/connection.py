"""One `/chat` WebSocket: many concurrent chats matched by id, nodes pushed on change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from ollamamax_stack.services.common.auth import PRINCIPAL, Authenticator, Principal
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.keys import AUTH
from ollamamax_stack.services.hub import protocol
from ollamamax_stack.services.hub.keys import HUB
from ollamamax_stack.services.hub.state import Hub

EXTRAS = ("tools", "format", "think")  # checked by protocol.check_extras, sent as they are


class Connection:
    """A client's socket and the chats running on it."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, principal: Principal | None,
                 auth: Authenticator) -> None:
        self.hub = hub
        self.ws = ws
        self.principal = principal
        self.auth = auth  # asked again at each chat: a key revoked meanwhile stops this socket
        self.chats: dict[Any, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message (frames of concurrent chats never interleave)."""
        if self.ws.closed:
            return
        async with self._send_lock:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_str(orjson.dumps(message).decode())
        self.hub.metrics.sent.labels(message["type"]).inc()

    def push_nodes(self, nodes: list[dict[str, Any]]) -> None:
        """Called by the watcher when the node set or health changes."""
        asyncio.get_running_loop().create_task(self.send(protocol.nodes(nodes)))

    async def handle(self, text: str) -> None:
        """React to one client message."""
        if len(text.encode()) > self.hub.max_message:
            raise protocol.ProtocolError(
                protocol.TOO_LARGE, f"message of {len(text.encode())} bytes is over the limit "
                                    f"of {self.hub.max_message} bytes")
        message = protocol.parse(text)
        kind = message["type"]
        self.hub.metrics.received.labels(kind).inc()
        if kind == "ping":
            await self.send({"type": "pong", "id": message.get("id")})
        elif kind == "nodes":
            await self.send(protocol.nodes(await self.hub.watcher.current()))
        elif kind == "cancel":
            task = self.chats.get(message.get("id"))
            if task is not None:
                task.cancel()
        else:
            await self.within_limit(message["id"])
            self.start_chat(message)

    async def within_limit(self, chat_id: Any) -> None:
        """Count a chat against its key's own `--rate-limit`; refuse it past the minute's."""
        principal = self.principal
        if principal is None or not principal.rate_limit:
            return
        decision = await self.hub.limiter.hit(principal.subject, principal.rate_limit)
        if not decision.allowed:
            raise protocol.ProtocolError(
                protocol.RATE_LIMITED, f"rate limit of {principal.rate_limit} requests per "
                                       f"minute reached; retry in {decision.reset_after:.0f}s",
                chat_id)

    def start_chat(self, message: dict[str, Any]) -> None:
        """Run a chat in its own task so others on this socket go on meanwhile."""
        chat_id = message["id"]
        principal = self.principal
        refused = self.auth.refusal(principal) if principal is not None else None
        if refused is not None:
            raise protocol.ProtocolError(protocol.UNAUTHORIZED, f"{refused}: reconnect with a "
                                                                "valid key", chat_id)
        if principal is not None and principal.expires_at and principal.expires_at < time.time():
            raise protocol.ProtocolError(protocol.UNAUTHORIZED,
                                         "your token has expired: reconnect with a new one",
                                         chat_id)
        if chat_id in self.chats:
            raise protocol.ProtocolError(protocol.DUPLICATE_ID,
                                         f"a chat with id {chat_id!r} is still running", chat_id)
        if len(self.chats) >= self.hub.max_chats:
            raise protocol.ProtocolError(protocol.TOO_MANY, f"at most {self.hub.max_chats} "
                                                            "chats at once per connection",
                                         chat_id)
        task = asyncio.get_running_loop().create_task(self.chat(message))
        self.chats[chat_id] = task
        self.hub.tasks.add(task)
        task.add_done_callback(lambda t: self._finished(chat_id, t))

    def _finished(self, chat_id: Any, task: asyncio.Task[None]) -> None:
        self.chats.pop(chat_id, None)
        self.hub.tasks.discard(task)

    async def chat(self, message: dict[str, Any]) -> None:
        """Stream one answer from the inference service as chunk messages, then done."""
        chat_id = message["id"]
        stream = message.get("stream", True)
        body = {"model": message["model"], "messages": message["messages"], "stream": True,
                "options": message.get("options", {})}
        for name in EXTRAS:
            if name in message:
                body[name] = message[name]
        pieces: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        try:
            async with self.hub.inference.stream("/api/chat", body) as answers:
                final: dict[str, Any] = {}
                async for answer in answers:
                    said = answer.get("message") or {}
                    text = said.get("content", "")
                    if text:
                        pieces.append(text)
                        if stream:
                            await self.send(protocol.chunk(chat_id, text))
                    if len(said) > 2:  # thinking, tool calls
                        calls.extend(said.get("tool_calls") or ())
                        if said.get("thinking"):
                            thoughts.append(said["thinking"])
                            if stream:
                                await self.send(protocol.chunk(chat_id, "", said["thinking"]))
                    if answer.get("done"):
                        final = answer
                        break
                await self.send(protocol.done(chat_id, "".join(pieces), final, answers.node,
                                              calls, "".join(thoughts)))
        except ApiError as exc:
            await self.send(protocol.error(exc.code, exc.message, chat_id, exc.retry_after))
        except asyncio.CancelledError:
            await self.send(protocol.error("cancelled", "chat cancelled", chat_id))
            raise

    async def close_chats(self) -> None:
        """Cancel what still runs (the client left)."""
        for task in list(self.chats.values()):
            task.cancel()
        for task in list(self.chats.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    """`GET /chat`: the WebSocket protocol of the README's "The `/chat` protocol"."""
    hub = request.app[HUB]
    if hub.draining:
        raise ApiError(503, "the hub is shutting down: connect to another endpoint")
    # aiohttp's own cap sits above ours, so a large message gets a protocol error, not a drop.
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=hub.max_message * 4 + 65536)
    await ws.prepare(request)
    connection = Connection(hub, ws, request.get(PRINCIPAL), request.app[AUTH])
    hub.connections.add(connection)
    hub.metrics.connections.inc()
    hub.watcher.subscribers.add(connection.push_nodes)
    try:
        await connection.send(protocol.nodes(await hub.watcher.current()))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    await connection.handle(msg.data)
                except protocol.ProtocolError as exc:
                    await connection.send(protocol.error(exc.code, exc.message, exc.chat_id))
            elif msg.type == WSMsgType.BINARY:
                await connection.send(protocol.error(protocol.BAD_JSON,
                                                     "send JSON text frames, not binary"))
    finally:
        hub.watcher.subscribers.discard(connection.push_nodes)
        hub.connections.discard(connection)
        hub.metrics.connections.dec()
        await connection.close_chats()
    return ws
