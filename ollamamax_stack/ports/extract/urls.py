"""Ports in source and prose (JS, TS, HTML, shell, Markdown): local URLs and port defaults."""

from __future__ import annotations

import re

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import URL, is_local, valid_port

_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# The name a URL is assigned to on its line: `API_BASE = 'http://...'`, `"API_BASE": "http://..."`.
_ASSIGNED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)['\"]?\s*[:=]\s*[`'\"]?\s*$")
# `process.env.PORT || 13000`, `Number(process.env.PORT) ?? "13000"`, `process.env["PORT"]`.
_ENV_DEFAULT = re.compile(
    r"process\.env(?:\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"](?P<qkey>[A-Za-z_][A-Za-z0-9_]*)"
    r"['\"]\s*\])[^|?;\n]{0,24}?(?:\|\||\?\?)\s*['\"]?(?P<port>\d{1,5})\b")
# `const PORT = 13000`, `WS_PORT: 13101`, `export PORT=13000` (a port-named key given a number).
_PORT_ASSIGN = re.compile(
    r"\b(?P<key>port|(?:[A-Za-z_][A-Za-z0-9_]*?)?(?:PORT|Port|_port))['\"]?\s*[:=]\s*['\"]?"
    r"(?P<port>\d{1,5})\b(?!\s*[|?.])")
_LISTEN = re.compile(r"\.listen\(\s*(?P<port>\d{1,5})\b")


def extract_urls(text: str) -> list[PortRef]:
    """Local `http(s)://`/`ws(s)://` URLs with ports, `process.env.X || N` defaults, `PORT = N`."""
    refs: list[PortRef] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "://" in line:
            for match in URL.finditer(line):
                port = valid_port(match.group("port") or "")
                if (port is None or match.group("scheme").lower() not in _WEB_SCHEMES
                        or not is_local(match.group("host"))):
                    continue
                named = _ASSIGNED.search(line, 0, match.start())
                keys = (named.group(1),) if named else ()
                refs.append(PortRef(port, number, "url", keys, None, match.group("path"),
                                    text=match.group(0)))
        if "process.env" in line:
            for match in _ENV_DEFAULT.finditer(line):
                port = valid_port(match.group("port"))
                if port is not None:
                    key = match.group("key") or match.group("qkey")
                    refs.append(PortRef(port, number, "default", (key,), own=True,
                                        text=match.group(0)))
        elif "ort" in line or "ORT" in line:
            for match in _PORT_ASSIGN.finditer(line):
                port = valid_port(match.group("port"))
                if port is not None:
                    refs.append(PortRef(port, number, "env", (match.group("key"),), own=True,
                                        text=match.group(0)))
        if ".listen(" in line:
            for match in _LISTEN.finditer(line):
                port = valid_port(match.group("port"))
                if port is not None:
                    refs.append(PortRef(port, number, "listen", own=True, text=match.group(0)))
    return refs
