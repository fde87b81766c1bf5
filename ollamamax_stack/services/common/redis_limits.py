"""Rate-limit windows in redis, one budget for every service; in memory while redis is down."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.rate_limits import Decision, MemoryRateLimiter, RateLimiter
from ollamamax_stack.services.common.redis_link import RedisLink
from ollamamax_stack.services.common.redis_revocation import SharedRevocationStore

# Count one hit; the first hit of a window starts its expiry (as the memory limiter does).
# Atomic in redis, so two gateways can never both take the last request of a window.
HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class SharedRateLimiter:
    """A RateLimiter counting in redis (`<stack>:ratelimit:<caller>`), else in memory."""

    def __init__(self, link: RedisLink, limit: int, window: float = 60.0) -> None:
        self.link = link
        self.limit = limit
        self.window = window
        self._local = MemoryRateLimiter(limit, window)
        self._script: AsyncScript | None = None

    @property
    def name(self) -> str:
        """`redis` or `memory`: where requests are counted now."""
        return self.link.store

    async def _hit(self, client: aioredis.Redis, caller: str) -> tuple[int, int]:
        if self._script is None:
            self._script = client.register_script(HIT)
        key = f"{self.link.prefix}:ratelimit:{caller}"
        count, ttl_ms = await self._script(keys=[key], args=[int(self.window * 1000)],
                                           client=client)
        return int(count), int(ttl_ms)

    async def hit(self, caller: str, limit: int | None = None) -> Decision:
        """Count one request of `caller` in the shared window (the local one if redis fails)."""
        limit = self.limit if limit is None else limit
        counted = await self.link.run(lambda client: self._hit(client, caller))
        if counted is None:
            return await self._local.hit(caller, limit)
        count, ttl_ms = counted
        return Decision(count <= limit, max(limit - count, 0), ttl_ms / 1000)


def rate_limiter(auth: Authenticator, limit: int) -> RateLimiter:
    """Shared counters on the redis link the authenticator uses; memory when there is none."""
    store = auth.revocations
    if isinstance(store, SharedRevocationStore):
        return SharedRateLimiter(store.link, limit)
    return MemoryRateLimiter(limit)
