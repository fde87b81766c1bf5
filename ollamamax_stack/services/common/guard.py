"""Browsers are untrusted callers: Host and Origin allowlists, and JSON-only state changes.

A web page can make the user's browser send requests to 127.0.0.1. DNS rebinding gets them
past the same-origin policy with a foreign `Host`; a "simple" request (`text/plain` POST)
needs no CORS preflight. So, like Ollama after CVE-2024-28224, every service answers only
`Host` names it knows, only `Origin`s the registry lists (or its own), and changes state only
for `application/json` bodies, which no page can send cross-origin without a preflight.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.common.textsafe import printable

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Endpoints that change the stack's state (routing, credentials): JSON bodies only. Model
# calls keep accepting `curl -d` bodies as Ollama does; the Origin check covers browsers.
STATE_CHANGING = ("/api/v1/nodes", "/auth")
MAX_KNOWN_HOSTS = 256


def host_name(header: str) -> str:
    """The name of a `Host` header without its port: `[::1]:80` -> `::1`, `A.lan.` -> `a.lan`."""
    # (mutmut: other maxsplits and rsplit give the same name, as do rstrip("XX.XX") on a
    # lowered name; a Host with two `]` is refused either way)
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def allowed_hosts(settings: ServiceSettings) -> frozenset[str]:
    """Local names, the bind address, the registry's `hosts`; the machine's names on 0.0.0.0."""
    names = set(LOCAL_HOSTS) | {h.lower() for h in settings.hosts}
    if settings.host in WILDCARDS:
        # Bound to every interface: callers name this machine, not a loopback address.
        # (mutmut: getfqdn().upper() survives where the machine's FQDN is its host name)
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        names.add(host_name(settings.host))
    return frozenset(names)


def host_allowed(name: str, names: frozenset[str], wildcard: bool) -> bool:
    """Whether a `Host` name may be served.

    An IP literal cannot be rebound (rebinding needs a DNS name), so loopback addresses are
    always fine, and on a wildcard bind so are private ones: Kubernetes probes and peers
    call a pod by its IP.
    """
    if name in names:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or (wildcard and (address.is_private or address.is_link_local))


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()  # (mutmut: any maxsplit: same [0])
    return kind == "application/json" or (kind.startswith("application/") and
                                         kind.endswith("+json"))


def browser_guard(settings: ServiceSettings, json_paths: tuple[str, ...] = ()) -> Any:
    """A middleware refusing foreign `Host`s and `Origin`s (403) and non-JSON changes (415)."""
    hosts = allowed_hosts(settings)
    wildcard = settings.host in WILDCARDS
    origins = frozenset(_origin(o) for o in (*settings.cors, *settings.page_origins))
    prefixes = tuple(p.rstrip("/") + "/" for p in json_paths)

    known: dict[str, bool] = {}  # Host header -> allowed: clients repeat the same few

    def host_ok(header: str) -> bool:
        # (mutmut: a cache that misses, or is cleared one entry earlier, decides the same)
        allowed = known.get(header)
        if allowed is None:
            if len(known) > MAX_KNOWN_HOSTS:
                known.clear()  # a client sending ever new names gets no memory of them
            allowed = known[header] = host_allowed(host_name(header), hosts, wildcard)
        return allowed

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        header = headers.get("Host")
        # A request without Host (HTTP/1.0) comes from no browser: browsers always send one.
        if header is not None and not host_ok(header):
            raise ApiError(403, f"Host {printable(header)!r} is not allowed: add it to the "
                                "registry's `hosts` (or OLLAMAMAX_HOSTS)", "forbidden_host")
        origin = headers.get("Origin")
        if origin is not None:
            wanted = _origin(origin)
            same = header is not None and wanted in (f"http://{header.lower()}",
                                                     f"https://{header.lower()}")
            if not same and wanted not in origins:
                raise ApiError(403, f"Origin {printable(origin)!r} is not allowed: add it to "
                                    "the registry's `cors` (or OLLAMAMAX_CORS)",
                               "forbidden_origin")
        if request.method in CHANGING:
            path = request.path
            if ((path in json_paths or path.startswith(prefixes)) and request.body_exists
                    and not _is_json(headers.get("Content-Type", ""))):
                raise ApiError(415, f"{request.method} {printable(path)} needs "
                                    "'Content-Type: application/json'", "unsupported_media_type")
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
