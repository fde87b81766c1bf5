"""Revoked JWTs in redis, seen across machines; in the local store (SQLite) while redis is down."""

from __future__ import annotations

import math
import time

import redis.asyncio as aioredis

from ollamamax_stack.services.common.redis_link import RedisLink
from ollamamax_stack.services.common.revocation import MemoryRevocationStore, RevocationStore


class SharedRevocationStore:
    """A RevocationStore on redis (`SET <stack>:revoked:<jti> EX <life left>`) and a local one."""

    def __init__(self, link: RedisLink, local: RevocationStore | None = None) -> None:
        self.link = link
        # Every revocation goes here too: this machine keeps refusing it while redis is down.
        self._local: RevocationStore = local or MemoryRevocationStore()
        # Revoked while redis was down: written to redis when it comes back.
        self._unshared: dict[str, float] = {}
        link.on_up(self._share)

    @property
    def name(self) -> str:
        """`redis`, or the local store's name (`sqlite`, `memory`): where revocations go now."""
        return "redis" if self.link.up else self._local.name

    def _key(self, jti: str) -> str:
        return f"{self.link.prefix}:revoked:{jti}"

    async def _put(self, client: aioredis.Redis, jti: str, expires_at: float) -> bool:
        ttl = math.ceil(expires_at - time.time())
        if ttl > 0:  # an expired token is refused anyway
            await client.set(self._key(jti), "1", ex=ttl)
        return True

    async def _share(self, client: aioredis.Redis) -> None:
        for jti, expires_at in list(self._unshared.items()):
            await self._put(client, jti, expires_at)
            del self._unshared[jti]

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuse `jti` here at once, and everywhere once redis has it."""
        await self._local.revoke(jti, expires_at)
        shared = await self.link.run(lambda client: self._put(client, jti, expires_at))
        if not shared:
            self._unshared = {k: v for k, v in self._unshared.items() if v > time.time()}
            self._unshared[jti] = expires_at

    async def is_revoked(self, jti: str) -> bool:
        """Whether this process or (when up) redis knows `jti` as revoked."""
        if await self._local.is_revoked(jti):
            return True
        found = await self.link.run(lambda client: client.exists(self._key(jti)))
        return bool(found)
