"""Ports in source files (JS, TS, Go, Python, shell): local URLs, listen calls, port defaults."""

from __future__ import annotations

import re

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import PORT_KEY, URL, host_side, valid_port

_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# The name a URL is assigned to on its line: `API_BASE = 'http://...'`, `"API_BASE": "http://..."`.
_ASSIGNED = re.compile(rf"({_IDENT})['\"]?\s*[:=]\s*[`'\"]?\s*$")
# An environment lookup with a default, just before the value:
# `process.env.X || `, `process.env["X"] ?? `, `os.getenv("X", `, `getEnv("X", `.
_ENV_LOOKUP = re.compile(
    rf"(?:process\.env(?:\.(?P<key>{_IDENT})|\[\s*['\"](?P<qkey>{_IDENT})['\"]\s*\])"
    r"[^|?;\n]{0,24}?(?:\|\||\?\?)"
    rf"|\b(?:getenv|Getenv|getEnv|GetEnv|get_env|environ\.get|env\.get)\s*\(\s*['\"]"
    rf"(?P<fkey>{_IDENT})['\"]\s*,)\s*(?:Number\(|parseInt\(|int\()?\s*[`'\"]?$")
_NUMBER = re.compile(r"\b(?P<port>\d{1,6})\b")
# `const PORT = 13000`, `WS_PORT: 13101`, `port=8000`, `Port: 8080` (a port-named key, a number).
_PORT_ASSIGN = re.compile(
    rf"(?<![A-Za-z0-9_.])(?P<key>port|Port|PORT|{_IDENT}_(?:PORT|port))['\"]?\s*[:=]\s*['\"]?"
    r"(?P<port>\d{1,5})\b(?!\s*[|?.])")
_LISTEN = re.compile(r"\.listen\(\s*(?P<port>\d{1,5})\b")
# Go and friends: `Listen: "0.0.0.0:11434"`, `Addr: ":8080"`, `http.ListenAndServe(":8080", h)`.
_LISTEN_ADDR = re.compile(
    r"(?:\b(?:Listen|ListenAddr|ListenAddress|Addr|Address|Bind|BindAddr|HTTPAddr|listen|"
    r"listen_addr|addr|bind)['\"]?\s*[:=]\s*|ListenAndServe(?:TLS)?\(\s*)"
    r"[`'\"](?P<host>[A-Za-z0-9_.\-\[\]:]*?):(?P<port>\d{1,5})[`'\"]")
GENERIC_KEY = "PORT"
# A file that starts a server: only there is a default `PORT` the port a program binds (a
# config module or a health-check client states it too, but binds nothing).
_SERVES = re.compile(r"\.listen\(|ListenAndServe|createServer\(|\.run\(|\bserve\(|"
                     r"HTTPServer\(|web\.run_app\(")


def _lookup_key(line: str, end: int) -> str | None:
    """The env key whose default the text at `end` is (`process.env.X || <here>`), if any."""
    match = _ENV_LOOKUP.search(line, max(0, end - 120), end)
    if match is None:
        return None
    return match.group("key") or match.group("qkey") or match.group("fkey")


def _urls(line: str, number: int) -> list[PortRef]:
    refs: list[PortRef] = []
    for match in URL.finditer(line):
        port = valid_port(match.group("port") or "")
        if port is None or match.group("scheme").lower() not in _WEB_SCHEMES | {
                "redis", "postgres", "postgresql", "mongodb", "amqp", "mysql"}:
            continue
        key = _lookup_key(line, match.start())
        if key is None:
            named = _ASSIGNED.search(line, 0, match.start())
            key = named.group(1) if named else None
        where = host_side(match.group("host"), "host")
        if where is None or (where[1] is not None and key is None):
            continue
        refs.append(PortRef(port, number, "url", (key,) if key else (), where[1],
                            match.group("path"), where[0], text=match.group(0),
                            scheme=match.group("scheme").lower()))
    return refs


def _defaults(line: str, number: int, serves: bool) -> list[PortRef]:
    refs: list[PortRef] = []
    for match in _NUMBER.finditer(line):
        key = _lookup_key(line, match.start())
        port = valid_port(match.group("port"))
        if key is None or port is None or not PORT_KEY.search(key):
            continue
        # `process.env.PORT || 13000` is a server's own port; `DB_PORT || 5432` names another.
        generic = key == GENERIC_KEY
        refs.append(PortRef(port, number, "default", (key,), own=True, text=line.strip()[:80],
                            role="bind" if generic and serves else "ref"))
    return refs


def extract_urls(text: str) -> list[PortRef]:
    """Local URLs, `process.env.X || N` defaults, `PORT = N`, `.listen(N)`, Go listen addresses."""
    refs: list[PortRef] = []
    serves = _SERVES.search(text) is not None
    for number, line in enumerate(text.splitlines(), start=1):
        if "://" in line:
            refs.extend(_urls(line, number))
        defaults = _defaults(line, number, serves) if ("env" in line or "Env" in line) else []
        refs.extend(defaults)
        if not defaults and ("ort" in line or "ORT" in line):
            for match in _PORT_ASSIGN.finditer(line):
                port = valid_port(match.group("port"))
                key = match.group("key")
                if port is not None:
                    generic = key in ("PORT", "port", "Port")
                    refs.append(PortRef(port, number, "assign", (key,), own=generic,
                                        text=match.group(0),
                                        role="bind" if key == "PORT" and serves else "ref"))
        if ".listen(" in line:
            for match in _LISTEN.finditer(line):
                port = valid_port(match.group("port"))
                if port is not None:
                    refs.append(PortRef(port, number, "listen", own=True, text=match.group(0),
                                        role="bind"))
        if "isten" in line or "ddr" in line or "ind" in line:
            for match in _LISTEN_ADDR.finditer(line):
                port = valid_port(match.group("port"))
                where = host_side(match.group("host").strip("[]"), "host")
                if port is not None and where is not None and where[1] is None:
                    refs.append(PortRef(port, number, "listen-addr", own=True,
                                        text=match.group(0), role="bind"))
    return refs
