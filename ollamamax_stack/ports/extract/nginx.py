"""nginx configuration: `listen`, `proxy_pass` and `server` lines of `upstream` blocks."""

from __future__ import annotations

import re

from ollamamax_stack.ports.extract import ExtractError, PortRef
from ollamamax_stack.ports.extract.values import URL, host_side, is_local, port_problem, valid_port

_PIECE = re.compile(r"[^;{}]+|[;{}]")
_LISTEN_ADDR = re.compile(r"^(?:(?P<host>\[[^\]]*\]|[^:\s]+):)?(?P<port>\d{1,6})$")


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
            host = (match.group("host") or "").strip("[]") if match else ""
            if match and (is_local(host) or host == "*"):
                port_text = match.group("port")
                port = valid_port(port_text)
                refs.append(PortRef(port or int(port_text), line, "listen", (), None, None,
                                    "host", True, words.strip(), role="bind",
                                    problem=port_problem(port_text)))
        elif directive == "proxy_pass" and args:
            location = next((arg for block, arg in reversed(blocks) if block == "location"), None)
            for match in URL.finditer(args[0]):
                port = valid_port(match.group("port") or "")
                host = match.group("host").lower()
                if port is None:
                    continue
                path = match.group("path") or location
                where = host_side(host, "host")
                if where is not None and (where[1] is None or where[1] in names):
                    refs.append(PortRef(port, line, "proxy_pass", (), where[1], path, where[0],
                                        False, words.strip(), scheme=match.group("scheme")))
        elif directive == "server" and args and blocks and blocks[-1][0] == "upstream":
            # The upstream's own name is a label, not evidence: only its servers' hosts are.
            host, _, port_text = args[0].rpartition(":")
            port = valid_port(port_text)
            where = host_side(host.strip("[]"), "host") if port is not None else None
            if port is None or where is None or (where[1] is not None and where[1] not in names):
                continue
            refs.append(PortRef(port, line, "upstream", (), where[1], None, where[0], False,
                                words.strip()))
    if blocks:
        raise ExtractError(f"unclosed block {blocks[-1][0]!r}")
    return refs
