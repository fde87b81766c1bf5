"""`POST /auth/token` (API key -> JWT), `GET /auth/me`, `POST /auth/revoke`."""

from __future__ import annotations

import time

from aiohttp import web

from ollamamax_stack.services.common.auth import (
    DEFAULT_TTL,
    MAX_TTL,
    PRINCIPAL,
    bearer,
    require_admin,
)
from ollamamax_stack.services.common.errors import ApiError, json_body
from ollamamax_stack.services.common.keys import AUTH


async def issue_token(request: web.Request) -> web.Response:
    """Trade an API key (bearer, or `{"api_key"}`) for a JWT; `expires_in` seconds optional."""
    auth = request.app[AUTH]
    if not auth.enabled:
        raise ApiError(400, "auth is off (no API key configured): no token is needed",
                       "auth_disabled")
    body = await json_body(request) if request.can_read_body else {}
    key = body.get("api_key") or bearer(request)
    if not isinstance(key, str) or not key:
        raise ApiError(401, "send an API key as 'Authorization: Bearer <key>' or {\"api_key\"}",
                       "invalid_api_key")
    principal = await auth.authenticate(key)
    if principal.method != "api_key":
        raise ApiError(401, "tokens are issued for API keys only", "invalid_api_key")
    ttl = body.get("expires_in", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL:
        raise ApiError(400, f"'expires_in' must be seconds in (0, {MAX_TTL}]", param="expires_in")
    if principal.expires_at is not None:  # a stored key's token ends when the key does
        ttl = max(1.0, min(float(ttl), principal.expires_at - time.time()))
    token, expires = auth.issue(principal.subject, float(ttl), role=principal.role,
                                key=principal.key)
    return web.json_response({"access_token": token, "token_type": "bearer",
                              "expires_in": int(ttl), "expires_at": int(expires),
                              "subject": principal.subject, "role": principal.role})


async def me(request: web.Request) -> web.Response:
    """Who the credentials say you are."""
    principal = request[PRINCIPAL]
    return web.json_response({"subject": principal.subject, "auth": principal.method,
                              "role": principal.role, "expires_at": principal.expires_at})


async def revoke(request: web.Request) -> web.Response:
    """Revoke the JWT this request carries, or (admin keys only) `{"token"}`: anyone's."""
    principal = request[PRINCIPAL]
    body = await json_body(request) if request.can_read_body else {}
    if "token" in body:
        require_admin(request, "revoking another token")
        if not isinstance(body["token"], str):
            raise ApiError(400, "'token' must be a string (a JWT)", param="token")
        claims = request.app[AUTH].claims_of(body["token"])
        await request.app[AUTH].revocations.revoke(str(claims["jti"]), float(claims["exp"]))
        return web.json_response({"revoked": claims["jti"]})
    if principal.method != "jwt" or principal.token_id is None:
        raise ApiError(400, "only a token (JWT) can be revoked; API keys are revoked with "
                            "`ollamamax keys revoke NAME` or removed from the keys file")
    await request.app[AUTH].revocations.revoke(principal.token_id, principal.expires_at or 0.0)
    return web.json_response({"revoked": principal.token_id})


def add_routes(app: web.Application) -> None:
    """Mount /auth."""
    app.router.add_post("/auth/token", issue_token)
    app.router.add_get("/auth/me", me)
    app.router.add_post("/auth/revoke", revoke)
