"""Auth for the whole stack: API keys, and HS256 JWTs signed with the one shared secret."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler

from ollamamax_stack.keystore.model import ACTIVE, REVOKED, StoredKey
from ollamamax_stack.services.common.apikeys import ADMIN, ADMIN_KEYS_ENV, USER, ApiKey
from ollamamax_stack.services.common.caller import CALLER, caller_of
from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.keys import AUTH
from ollamamax_stack.services.common.revocation import MemoryRevocationStore, RevocationStore
from ollamamax_stack.services.common.stored_keys import StoredKeys

ISSUER = "ollamamax"
AUDIENCE = "ollamamax-stack"
ALGORITHM = "HS256"
DEFAULT_TTL = 3600
MAX_TTL = 7 * 24 * 3600
SERVICE = "service"  # the role of the tokens the services send each other


@dataclass(frozen=True)
class Principal:
    """Who made a request: a key's name or a token's subject, their role, how they proved it."""

    subject: str
    method: str  # "api_key", "jwt" or "off"
    expires_at: float | None = None
    token_id: str | None = None
    role: str = USER
    rate_limit: int | None = None  # a stored key's own requests per minute
    key: str | None = None  # the stored key (its name) behind this principal


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
ANONYMOUS = Principal(subject="anonymous", method="off")  # everyone, when auth is off


class Authenticator:
    """Checks bearer credentials and issues tokens; off when no API key is configured."""

    def __init__(self, keys: dict[str, ApiKey], secret: bytes, service: str,
                 revocations: RevocationStore | None = None,
                 trusted: RevocationStore | None = None,
                 stored: StoredKeys | None = None) -> None:
        self.keys = keys
        self.stored = stored
        self.secret = secret
        self.service = service
        self.revocations: RevocationStore = revocations or MemoryRevocationStore()
        # The services' own tokens are checked only here: a store nobody else can write.
        self.trusted: RevocationStore = trusted or self.revocations
        self._service_token: tuple[str, float] | None = None

    @property
    def enabled(self) -> bool:
        """Whether credentials are required (some API key is configured, or stored)."""
        return bool(self.keys) or (self.stored is not None and self.stored.holds_keys)

    @property
    def mode(self) -> str:
        """`api_keys` when auth is on, `off` otherwise (shown by /health)."""
        return "api_keys" if self.enabled else "off"

    def issue(self, subject: str, ttl: float = DEFAULT_TTL, role: str = USER,
              key: str | None = None) -> tuple[str, float]:
        """A signed JWT for `subject` in `role` and its expiry (epoch seconds).

        `key` names the stored key it was traded for: revoking that key refuses the token too."""
        now = time.time()
        expires = now + ttl
        claims: dict[str, Any] = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE,
                                  "iat": int(now), "exp": int(expires),
                                  "jti": uuid.uuid4().hex, "role": role}
        if key is not None:
            claims["key"] = key
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), float(int(expires))

    def service_token(self) -> str:
        """A token this service sends to the others; renewed well before it expires."""
        if self._service_token is None or self._service_token[1] - time.time() < 300:
            self._service_token = self.issue(f"service:{self.service}", role=SERVICE)
        return self._service_token[0]

    def upstream_headers(self) -> dict[str, str]:
        """Headers for calls to other services of the stack.

        Sent whenever keys may exist (a store is followed): auth turns on stack-wide when the
        first key is created, and this service may notice a moment before or after the other."""
        wanted = self.enabled or self.stored is not None
        return {"Authorization": f"Bearer {self.service_token()}"} if wanted else {}

    def _api_key(self, credential: str) -> ApiKey | None:
        for key, entry in self.keys.items():
            if hmac.compare_digest(key.encode(), credential.encode()):
                return entry
        return None

    async def authenticate(self, credential: str | None) -> Principal:
        """The principal behind a credential, or a 401 ApiError saying what is wrong."""
        if not self.enabled:
            return ANONYMOUS
        if not credential:
            raise ApiError(401, "missing credentials: send 'Authorization: Bearer <API key or "
                                "token>'", "invalid_api_key")
        entry = self._api_key(credential)
        if entry is not None:
            return Principal(subject=entry.name, method="api_key", role=entry.role)
        stored = await self.stored.find(credential) if self.stored is not None else None
        if stored is not None:
            self._check_stored(stored, "API key")
            assert self.stored is not None
            self.stored.used(stored)
            return Principal(subject=stored.name, method="api_key", role=stored.role,
                             expires_at=stored.expires_at, rate_limit=stored.rate_limit,
                             key=stored.name)
        if credential.count(".") != 2:
            self._store_unread()
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
        role = claims.get("role") if claims.get("role") in (ADMIN, SERVICE) else USER
        store = self.trusted if role == SERVICE else self.revocations
        if isinstance(jti, str) and await store.is_revoked(jti):
            raise ApiError(401, "token has been revoked", "token_revoked")
        key = claims.get("key")
        rate_limit = None
        if isinstance(key, str):
            traded = await self.stored.find_named(key) if self.stored is not None else None
            if traded is None:
                raise ApiError(401, f"the token's API key {key!r} is not in the key store",
                               "token_revoked")
            self._check_stored(traded, "the token's API key")
            rate_limit = traded.rate_limit
        return Principal(subject=str(claims["sub"]), method="jwt",
                         expires_at=float(claims["exp"]), token_id=jti, role=str(role),
                         rate_limit=rate_limit, key=key if isinstance(key, str) else None)

    def _store_unread(self) -> None:
        """A 503 while the key store was never read (PostgreSQL not up): the key may be in it."""
        if self.stored is not None and self.stored.unread:
            raise ApiError(503, f"the key store ({self.stored.location.describe()}) cannot be "
                                f"read yet: {self.stored.error or 'starting'}",
                           "key_store_unavailable")

    @staticmethod
    def _check_stored(stored: StoredKey, what: str) -> None:
        state = stored.state(time.time())
        if state == REVOKED:
            raise ApiError(401, f"{what} {stored.name!r} has been revoked", "key_revoked")
        if state != ACTIVE:
            raise ApiError(401, f"{what} {stored.name!r} has expired", "key_expired")

    def refusal(self, principal: Principal) -> str | None:
        """Why a principal let in earlier would be refused now (its stored key revoked or
        expired), for long-lived connections; None while it still holds."""
        if principal.key is None or self.stored is None:
            return None
        stored = self.stored.named(principal.key)
        if stored is None:
            return f"the API key {principal.key!r} is no longer in the key store"
        try:
            self._check_stored(stored, "the API key")
        except ApiError as exc:
            return exc.message
        return None

    def claims_of(self, token: str) -> dict[str, Any]:
        """The verified claims of a token this stack signed (expiry not required to be ahead)."""
        try:
            return dict(jwt.decode(token, self.secret, algorithms=[ALGORITHM],
                                   audience=AUDIENCE, issuer=ISSUER,
                                   options={"require": ["exp", "jti"]}))
        except jwt.InvalidTokenError as exc:
            raise ApiError(400, f"'token' is not a token of this stack: {exc}",
                           param="token") from None


def require_admin(request: web.Request, action: str) -> None:
    """A 403 unless auth is off or the caller's key (or its token) has the admin role."""
    if not request.app[AUTH].enabled:
        return
    principal = request.get(PRINCIPAL)
    if principal is None or principal.role != ADMIN:
        raise ApiError(403, f"{action} needs an admin key (a key of {ADMIN_KEYS_ENV}, or with "
                            "role 'admin' in the keys file)", "forbidden")


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
            # For the routing queue: fair across keys; a caller that hung up leaves it.
            CALLER.set(caller_of(request, request[PRINCIPAL].subject))
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
