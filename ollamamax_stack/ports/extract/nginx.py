"""nginx configuration: `listen`, `proxy_pass` and `server` lines of `upstream` blocks."""

from __future__ import annotations

import re

from ollamamax_stack.ports.extract import ExtractError, PortRef, Side
from ollamamax_stack.ports.extract.values import URL, is_local, valid_port

_PIECE = re.compile(r"[^;{}]+|[;{}]")
_LISTEN_ADDR = re.compile(r"^(?:(?P<host>\[[^\]]*\]|[^:\s]+):)?(?P<port>\d{1,5})$")


def _statements(text: str) -> list[tuple[str, int, str]]:
    """(words, line, terminator) for every statement, comments removed."""
    found: list[tuple[str, int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0]
        for piece in _PIECE.findall(line):
            if piece in (";", "{", "}"):
                found.append((pending.strip(), start or number, piece))
                pending, start = "", 0
            elif piece.strip():
                if not pending.strip():
                    start = number
                pending += " " + piece
    if pending.strip():
        raise ExtractError(f"unterminated directive {pending.split()[0]!r}", start)
    return found


def extract_nginx(text: str, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """Ports nginx listens on, proxies to, or lists as upstream servers."""
    refs: list[PortRef] = []
    blocks: list[tuple[str, str | None]] = []  # (block directive, its argument)
    for words, line, end in _statements(text):
        parts = words.split()
        if end == "{":
            blocks.append((parts[0] if parts else "", parts[1] if len(parts) > 1 else None))
            continue
        if end == "}":
            if not blocks:
                raise ExtractError("unbalanced '}'", line)
            blocks.pop()
            continue
        if not parts:
            continue
        directive, args = parts[0], parts[1:]
        if directive == "listen" and args:
            match = _LISTEN_ADDR.match(args[0])
            if match and (port := valid_port(match.group("port"))) is not None:
                host = (match.group("host") or "").strip("[]")
                if is_local(host) or not host or host == "*":
                    refs.append(PortRef(port, line, "listen", (), None, None, "host", True,
                                        words.strip()))
        elif directive == "proxy_pass" and args:
            location = next((arg for block, arg in reversed(blocks) if block == "location"), None)
            for match in URL.finditer(args[0]):
                port = valid_port(match.group("port") or "")
                host = match.group("host").lower()
                if port is None:
                    continue
                path = match.group("path") or location
                if is_local(host):
                    refs.append(PortRef(port, line, "proxy_pass", (), None, path, "host", False,
                                        words.strip()))
                elif host in names:
                    refs.append(PortRef(port, line, "proxy_pass", (), host, path, "container",
                                        False, words.strip()))
        elif directive == "server" and args and blocks and blocks[-1][0] == "upstream":
            upstream = blocks[-1][1]
            host, _, port_text = args[0].rpartition(":")
            port = valid_port(port_text)
            if port is None:
                continue
            host = host.strip("[]").lower()
            side: Side = "host" if is_local(host) else "container"
            if side == "container" and host not in names:
                continue
            owner = upstream if side == "host" else host
            refs.append(PortRef(port, line, "upstream", (), owner, None, side, False,
                                words.strip()))
    if blocks:
        raise ExtractError(f"unclosed block {blocks[-1][0]!r}")
    return refs
