"""Auth for the whole stack: API keys, and HS256 JWTs signed with the one shared secret."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.keys import AUTH
from ollamamax_stack.services.common.revocation import MemoryRevocationStore, RevocationStore

ISSUER = "ollamamax"
AUDIENCE = "ollamamax-stack"
ALGORITHM = "HS256"
KEYS_ENV = "OLLAMAMAX_API_KEYS"
KEYS_FILE_ENV = "OLLAMAMAX_API_KEYS_FILE"
DEFAULT_TTL = 3600
MAX_TTL = 7 * 24 * 3600


class KeysFileError(OllamamaxError):
    """The API keys file cannot be read (exit 1)."""


@dataclass(frozen=True)
class Principal:
    """Who made a request: a key's name or a token's subject, and how they proved it."""

    subject: str
    method: str  # "api_key", "jwt" or "off"
    expires_at: float | None = None
    token_id: str | None = None


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
ANONYMOUS = Principal(subject="anonymous", method="off")  # everyone, when auth is off


def read_keys(env: Mapping[str, str]) -> dict[str, str]:
    """API keys (key -> name) from `$OLLAMAMAX_API_KEYS` (comma-separated) and the keys file."""
    keys: dict[str, str] = {}
    for key in (k.strip() for k in env.get(KEYS_ENV, "").split(",")):
        if key:
            keys[key] = f"key-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    path = env.get(KEYS_FILE_ENV)
    if path:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise KeysFileError(f"cannot read the API keys file {path} "
                                f"({KEYS_FILE_ENV}): {exc.strerror}") from None
        # One key per line, optionally followed by a name: `sk-abc123 alice`.
        for line in lines:
            parts = line.split("#", 1)[0].split(None, 1)
            if parts:
                keys[parts[0]] = parts[1].strip() if len(parts) > 1 else (
                    f"key-{hashlib.sha256(parts[0].encode()).hexdigest()[:8]}")
    return keys


class Authenticator:
    """Checks bearer credentials and issues tokens; off when no API key is configured."""

    def __init__(self, keys: dict[str, str], secret: bytes, service: str,
                 revocations: RevocationStore | None = None) -> None:
        self.keys = keys
        self.secret = secret
        self.service = service
        self.revocations: RevocationStore = revocations or MemoryRevocationStore()
        self._service_token: tuple[str, float] | None = None

    @property
    def enabled(self) -> bool:
        """Whether credentials are required (some API key is configured)."""
        return bool(self.keys)

    @property
    def mode(self) -> str:
        """`api_keys` when auth is on, `off` otherwise (shown by /health)."""
        return "api_keys" if self.enabled else "off"

    def issue(self, subject: str, ttl: float = DEFAULT_TTL) -> tuple[str, float]:
        """A signed JWT for `subject` and its expiry (epoch seconds)."""
        now = time.time()
        expires = now + ttl
        claims: dict[str, Any] = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE,
                                  "iat": int(now), "exp": int(expires),
                                  "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), float(int(expires))

    def service_token(self) -> str:
        """A token this service sends to the others; renewed well before it expires."""
        if self._service_token is None or self._service_token[1] - time.time() < 300:
            self._service_token = self.issue(f"service:{self.service}")
        return self._service_token[0]

    def upstream_headers(self) -> dict[str, str]:
        """Headers for calls to other services of the stack."""
        return {"Authorization": f"Bearer {self.service_token()}"} if self.enabled else {}

    def _api_key(self, credential: str) -> str | None:
        for key, name in self.keys.items():
            if hmac.compare_digest(key.encode(), credential.encode()):
                return name
        return None

    async def authenticate(self, credential: str | None) -> Principal:
        """The principal behind a credential, or a 401 ApiError saying what is wrong."""
        if not self.enabled:
            return ANONYMOUS
        if not credential:
            raise ApiError(401, "missing credentials: send 'Authorization: Bearer <API key or "
                                "token>'", "invalid_api_key")
        name = self._api_key(credential)
        if name is not None:
            return Principal(subject=name, method="api_key")
        if credential.count(".") != 2:
            raise ApiError(401, "invalid API key", "invalid_api_key")
        try:
            claims = jwt.decode(credential, self.secret, algorithms=[ALGORITHM],
                                audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "token has expired: get a new one from POST /auth/token",
                           "token_expired") from None
        except jwt.InvalidTokenError as exc:
            raise ApiError(401, f"invalid token: {exc}", "invalid_token") from None
        jti = claims.get("jti")
        if isinstance(jti, str) and await self.revocations.is_revoked(jti):
            raise ApiError(401, "token has been revoked", "token_revoked")
        return Principal(subject=str(claims["sub"]), method="jwt",
                         expires_at=float(claims["exp"]), token_id=jti)


def bearer(request: web.Request, allow_query: bool = False) -> str | None:
    """The bearer credential of a request (`?token=` too, for browsers' WebSockets)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_query:
        return request.query.get("token") or None
    return None


def auth_middleware(protected: tuple[str, ...], websocket_paths: tuple[str, ...] = ()) -> Any:
    """Require credentials on paths under `protected`; health, ready and metrics stay open."""

    prefixes = tuple(p.rstrip("/") + "/" for p in protected)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if request.method != "OPTIONS" and (path in protected or path.startswith(prefixes)):
            auth = request.app[AUTH]
            if auth.enabled:
                request[PRINCIPAL] = await auth.authenticate(
                    bearer(request, allow_query=path in websocket_paths))
            else:  # nothing to check: skip the bearer parsing and the await
                request[PRINCIPAL] = ANONYMOUS
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
