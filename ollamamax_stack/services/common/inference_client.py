"""How the gateway and the hub call the inference service: JSON, NDJSON streams, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.health import Readiness
from ollamamax_stack.services.common.textsafe import hide_addresses

NODE_HEADER = "X-Ollamamax-Node"  # set by the inference proxy: which node answered
READY_CACHE = 0.25  # seconds: many probes in a burst cost one call


class UpstreamError(ApiError):
    """The inference service refused, failed, or said no (its status and message kept)."""


class Answers:
    """The objects of one NDJSON answer, and the node that produced them."""

    def __init__(self, resp: aiohttp.ClientResponse, hide_addresses: bool = False) -> None:
        self._resp = resp
        self.node: str | None = resp.headers.get(NODE_HEADER)
        # With auth off every caller is anonymous: node addresses stay in the logs.
        self._hide = hide_addresses

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for line in self._resp.content:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise UpstreamError(502, f"inference sent a broken line: {line[:80]!r}",
                                        "upstream_error") from None
                if isinstance(item, dict) and "error" in item:
                    message = str(item["error"])
                    raise UpstreamError(502, hide_addresses(message) if self._hide else message,
                                        "upstream_error")
                if isinstance(item, dict):
                    yield item
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamError(502, f"the inference stream broke off: {exc}",
                                "upstream_error") from None


class InferenceClient:
    """A keep-alive client of the inference service, authenticated as this service."""

    def __init__(self, base_url: str, auth: Authenticator) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._session: aiohttp.ClientSession | None = None
        self._ready: tuple[float, Readiness] | None = None

    async def start(self) -> None:
        """Open the session (no total timeout: generations may take minutes)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=512),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=3))

    async def stop(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session."""
        assert self._session is not None, "client not started"
        return self._session

    async def _send(self, method: str, path: str, body: Any = None,
                    timeout: float | None = None) -> aiohttp.ClientResponse:
        kwargs: dict[str, Any] = {"headers": self.auth.upstream_headers()}
        if body is not None:
            kwargs["data"] = json.dumps(body, separators=(",", ":")).encode()
            kwargs["headers"]["Content-Type"] = "application/json"
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            resp = await self.session.request(method, self.base_url + path, **kwargs)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise UpstreamError(503, f"the inference service at {self.base_url} is not "
                                     f"answering: {reason}", "service_unavailable") from None
        if resp.status >= 400:
            try:
                detail = await resp.json(content_type=None)
                message = detail.get("error") if isinstance(detail, dict) else None
            except (ValueError, aiohttp.ClientError):
                message = None
            resp.close()
            status = resp.status
            raise UpstreamError(status, str(message or f"inference answered HTTP {status}"),
                                "model_not_found" if status == 404 else None)
        return resp

    async def get(self, path: str, timeout: float | None = 10.0) -> Any:
        """GET a JSON document."""
        resp = await self._send("GET", path, timeout=timeout)
        async with resp:
            return await resp.json(content_type=None)

    async def call(self, path: str, body: dict[str, Any]) -> Any:
        """POST and read one JSON answer (`"stream": false`)."""
        resp = await self._send("POST", path, body)
        async with resp:
            try:
                # json.loads takes the bytes as they are: no charset sniffing, no str copy.
                return json.loads(await resp.read())
            except (ValueError, aiohttp.ClientPayloadError) as exc:
                raise UpstreamError(502, f"inference sent a broken answer: {exc}") from None

    @contextlib.asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[Answers]:
        """POST and iterate the NDJSON objects; errors before the first byte raise at entry."""
        resp = await self._send("POST", path, body)
        try:
            yield Answers(resp, hide_addresses=not self.auth.enabled)
        finally:
            # An abandoned stream closes its connection, which cancels the work upstream.
            resp.close()

    async def readiness(self) -> Readiness:
        """The inference service's readiness, seen from here (cached for a moment)."""
        now = time.monotonic()
        if self._ready is not None and now - self._ready[0] < READY_CACHE:
            return self._ready[1]
        state = await self._probe()
        self._ready = (time.monotonic(), state)
        return state

    async def _probe(self) -> Readiness:
        url = f"{self.base_url}/health/ready"
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            return Readiness(ready=False, reasons=[f"inference at {self.base_url} is not "
                                                   f"answering: {exc or 'timed out'}"])
        reasons = [f"inference: {r}" for r in body.get("reasons", [])]
        if resp.status != 200 or not body.get("ready"):
            return Readiness(ready=False, reasons=reasons or ["inference is not ready"])
        return Readiness(ready=True, degraded=bool(body.get("degraded")), reasons=reasons)
