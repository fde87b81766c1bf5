"""One process's link to redis: up or down, rechecked in the background, never failing a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry.environ import PASSWORD_FILES
from ollamamax_stack.services.common.secret import SecretError, read_secret
from ollamamax_stack.services.common.settings import ServiceSettings

log = logging.getLogger("ollamamax.services.redis")
T = TypeVar("T")
URL_ENV = "OLLAMAMAX_REDIS_URL"
PASSWORD_FILE_ENV = PASSWORD_FILES["redis"][0]
DEFAULT_CHECK = 2.0
DEFAULT_TIMEOUT = 0.5
# A refused or reset connection, a timeout, or redis's own refusal: all mean "use memory now".
FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def shown_url(url: str) -> str:
    """The URL with any password masked, fit for /health and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class NotProven(Exception):
    """The server on redis's address did not prove it is the stack's redis."""


class RedisLink:
    """A redis client that says whether redis is up; callers use memory whenever it is not.

    Redis is used only once it proved it is the stack's: it refuses a client without the
    password (a stranger's server that answers everything does not), then accepts ours.
    """

    def __init__(self, url: str, check_every: float = DEFAULT_CHECK,
                 timeout: float = DEFAULT_TIMEOUT, prefix: str = "ollamamax",
                 password_file: Path | None = None) -> None:
        self.url = url
        self.password_file = password_file
        self.password = urlsplit(url).password
        self.check_every = check_every
        self.timeout = timeout
        self.prefix = prefix
        self.up = False
        self.error: str | None = "not checked yet"
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._users = 0
        self._on_up: list[Callable[[aioredis.Redis], Awaitable[None]]] = []
        self._new_client()  # a bad URL is a usage error at start, not a failure later

    def _connect(self, password: str | None) -> aioredis.Redis:
        try:
            # No retries: a failed call falls back to memory at once, the checker retries.
            client: aioredis.Redis = aioredis.Redis.from_url(
                self.url, password=password, socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0),
                decode_responses=True)
        except ValueError as exc:
            raise UsageError(f"environment variable {URL_ENV}={shown_url(self.url)!r} is not "
                             f"a redis URL: {exc}") from None
        return client

    def _new_client(self) -> aioredis.Redis:
        self._client = self._connect(self.password)
        return self._client

    async def _prove(self) -> None:
        """NotProven unless the server refuses a client without our password (NOAUTH)."""
        if self.password_file is not None:
            # Read on each way up: redis's launcher may write it after this service started.
            try:
                password = read_secret(self.password_file, "redis password")
            except SecretError as exc:
                raise NotProven(str(exc)) from None
            if password != self.password:
                self.password = password
                await self._close()
                self._new_client()
        if not self.password:
            raise NotProven(f"no password configured ({PASSWORD_FILE_ENV}): a redis anyone "
                            "could answer for is not used")
        # Asked first without the password, so a server that does not ask never learns it.
        anonymous = self._connect("")
        try:
            answered = await asyncio.wait_for(anonymous.ping(), self.timeout * 2)
        except AuthenticationError:
            return  # NOAUTH: it asks for a password, as the stack's redis does
        finally:
            with contextlib.suppress(*FAILURES):
                await anonymous.aclose()
        raise NotProven(f"the server at {shown_url(self.url)} answered {answered!r} without "
                        "the password: not the stack's redis (a stranger may hold its port)")

    @property
    def store(self) -> str:
        """`redis` while redis answers, else `memory`."""
        return "redis" if self.up else "memory"

    def health(self) -> dict[str, Any]:
        """What /health shows about redis."""
        return {"url": shown_url(self.url), "up": self.up, "error": self.error}

    def on_up(self, hook: Callable[[aioredis.Redis], Awaitable[None]]) -> None:
        """Run `hook` each time redis comes (back) up, before it is used again."""
        self._on_up.append(hook)

    async def run(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """`command` on redis, or None when redis is down or just failed (then marked down)."""
        client = self._client
        if not self.up or client is None:
            return None
        try:
            return await command(client)
        except FAILURES as exc:
            self._down(exc)
            return None

    def _down(self, exc: BaseException) -> None:
        if isinstance(exc, NotProven):
            self.error = f"not used: {exc}"
        else:
            self.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.up:
            log.warning("redis at %s is gone (%s): using memory", shown_url(self.url), self.error)
        self.up = False

    async def check(self) -> bool:
        """PING redis now; on the way up, prove it first and run the hooks; whether it is up."""
        try:
            if not self.up:
                await self._prove()
            client = self._client or self._new_client()
            await asyncio.wait_for(client.ping(), self.timeout * 2)
            if not self.up:
                for hook in self._on_up:
                    await hook(client)
        except AuthenticationError as exc:
            self._down(NotProven(f"AUTH with the stack's password failed: {exc}"))
            return False
        except (NotProven, *FAILURES) as exc:
            self._down(exc)
            return False
        if not self.up:
            log.info("redis at %s is up: using it", shown_url(self.url))
        self.up, self.error = True, None
        return True

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            await self.check()

    async def start(self) -> None:
        """Check once, then keep checking; apps sharing this link each start and stop it."""
        self._users += 1
        if self._users == 1:
            await self.check()
            self._task = asyncio.create_task(self._check_forever())

    async def stop(self) -> None:
        """Stop checking and close the client once the last app has stopped."""
        self._users -= 1
        if self._users > 0:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()
        self.up = False

    async def _close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(*FAILURES):
                await self._client.aclose()
            self._client = None

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context around start and stop."""
        await self.start()
        yield
        await self.stop()


def redis_link(settings: ServiceSettings) -> RedisLink | None:
    """The link to `$OLLAMAMAX_REDIS_URL` (None when it is empty): redis when up, else memory.

    The password comes from `$OLLAMAMAX_REDIS_PASSWORD_FILE` (the stack generates it with the
    `full` profile), else from the URL.
    """
    url = settings.get(URL_ENV)
    if not url:
        return None
    path = settings.get(PASSWORD_FILE_ENV)
    return RedisLink(url, check_every=settings.number("OLLAMAMAX_REDIS_CHECK", DEFAULT_CHECK),
                     timeout=settings.number("OLLAMAMAX_REDIS_TIMEOUT", DEFAULT_TIMEOUT),
                     prefix=settings.get("OLLAMAMAX_STACK", "ollamamax"),
                     password_file=Path(path) if path else None)
