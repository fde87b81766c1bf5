"""Fetch the http(s) images of a request, with a size and a time limit, never from inside.

An image URL is fetched by the gateway on a caller's behalf, so it must not become a way to
reach what only the gateway can reach (SSRF): every address a host resolves to, and every
redirect's, must be a global one and none of this machine's. Names in
`OLLAMAMAX_IMAGE_ALLOW_HOSTS` (e.g. an internal image store) are exempt.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

import aiohttp
import psutil
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.gateway.content import ImageFetch
from ollamamax_stack.services.gateway.errors import bad

MAX_BYTES = 20 * 1024 * 1024
TIMEOUT = 10.0
REDIRECTS = 3


class Refused(OSError):
    """A host the gateway will not fetch from."""


def own_addresses() -> frozenset[str]:
    """This machine's interface addresses."""
    return frozenset(a.address.split("%")[0] for addrs in psutil.net_if_addrs().values()
                     for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))


class PublicOnly:
    """Which addresses may be fetched: global ones that are not this machine's."""

    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self.allowed_hosts = allowed_hosts
        self.own = own_addresses()

    def check(self, host: str, address: str) -> None:
        """Raise Refused unless `address` (of `host`) may be fetched from."""
        if host.lower() in self.allowed_hosts:
            return
        ip = ipaddress.ip_address(address)
        if not ip.is_global or ip.is_multicast or address in self.own:
            raise Refused(f"{host} is a private, loopback or own address of the gateway "
                          "(allow it with OLLAMAMAX_IMAGE_ALLOW_HOSTS)")


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses `PublicOnly` allows."""

    def __init__(self, policy: PublicOnly) -> None:
        self.policy = policy
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        for result in found:
            self.policy.check(host, result["host"])
        return found

    async def close(self) -> None:
        await self.inner.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ImageFetcher:
    """Fetches image URLs into base64 for Ollama's `images`."""

    def __init__(self, settings: ServiceSettings) -> None:
        allowed = settings.get("OLLAMAMAX_IMAGE_ALLOW_HOSTS")
        self.policy = PublicOnly(frozenset(h.strip().lower() for h in allowed.split(",")
                                           if h.strip()))
        self.max_bytes = int(settings.number("OLLAMAMAX_IMAGE_MAX_BYTES", MAX_BYTES))
        self.timeout = settings.number("OLLAMAMAX_IMAGE_TIMEOUT", TIMEOUT)
        self._session: aiohttp.ClientSession | None = None

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """Open the client session for the app's life (a cleanup_ctx)."""
        connector = aiohttp.TCPConnector(resolver=CheckedResolver(self.policy),
                                         use_dns_cache=False)
        self._session = aiohttp.ClientSession(connector=connector)
        yield
        await self._session.close()

    async def fetch_all(self, fetches: list[ImageFetch]) -> None:
        """Fill every fetch's slot with its image's base64 (a 400 naming a failed one)."""
        results = await asyncio.gather(*(self.fetch(f.url, f.param) for f in fetches))
        for fetch, data in zip(fetches, results, strict=True):
            fetch.images[fetch.slot] = data

    async def fetch(self, url: str, param: str) -> str:
        """One image as base64."""
        assert self._session is not None, "fetcher not started"
        try:
            async with asyncio.timeout(self.timeout):
                for _ in range(REDIRECTS + 1):
                    host = urlsplit(url).hostname or ""
                    if _is_ip(host):
                        self.policy.check(host, host)
                    async with self._session.get(url, allow_redirects=False) as resp:
                        if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                            url = urljoin(url, resp.headers["Location"])
                            if not url.startswith(("http://", "https://")):
                                raise Refused("redirected away from http(s)")
                            continue
                        if resp.status != 200:
                            raise Refused(f"the server answered HTTP {resp.status}")
                        return base64.b64encode(await self._read(resp)).decode()
                raise Refused(f"more than {REDIRECTS} redirects")
        except TimeoutError:
            raise bad(f"{param}: the image did not arrive within {self.timeout:g}s "
                      "(OLLAMAMAX_IMAGE_TIMEOUT)", param) from None
        except (OSError, aiohttp.ClientError, ValueError) as exc:
            raise bad(f"{param}: cannot fetch the image: {exc}", param) from None

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        if (resp.content_length or 0) > self.max_bytes:
            raise Refused(f"the image is over {self.max_bytes} bytes (OLLAMAMAX_IMAGE_MAX_BYTES)")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            data += chunk
            if len(data) > self.max_bytes:
                raise Refused(f"the image is over {self.max_bytes} bytes "
                              "(OLLAMAMAX_IMAGE_MAX_BYTES)")
        return bytes(data)

