"""Revoked JWTs, behind a small interface so a shared (redis) store can replace memory."""

from __future__ import annotations

import time
from typing import Protocol


class RevocationStore(Protocol):
    """Where revoked token ids are kept until they would have expired anyway."""

    @property
    def name(self) -> str:
        """`memory`, `redis`: where revocations are kept now."""

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuse the token `jti` from now until `expires_at` (epoch seconds)."""

    async def is_revoked(self, jti: str) -> bool:
        """Whether the token `jti` was revoked."""


class MemoryRevocationStore:
    """Revocations in this process only: enough for one gateway."""

    name = "memory"

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Remember `jti` until it expires; forget what has expired meanwhile."""
        now = time.time()
        self._revoked = {k: v for k, v in self._revoked.items() if v > now}
        self._revoked[jti] = expires_at

    async def is_revoked(self, jti: str) -> bool:
        """Whether `jti` was revoked and has not expired."""
        return self._revoked.get(jti, 0.0) > time.time()
