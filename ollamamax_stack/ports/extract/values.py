"""Ports inside values: plain numbers, `${VAR:-default}`, URLs and `host:port` pairs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ollamamax_stack.ports.extract import PortRef

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1", "::", "[::1]", "[::]", ""})
_VAR = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-=?+])(?P<default>[^}]*))?\}"
                  r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
# Any scheme: http(s)/ws(s), but also postgresql://, redis://; userinfo allowed before the host.
URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^\s/@'\"`<>]*@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?"
    r"(?P<path>/[^\s'\"`<>)\]},;|]*)?")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(?P<port>\d{1,5})$")
PORT_KEY = re.compile(r"(?i)(?:^|_)PORT$")


def valid_port(text: str) -> int | None:
    """The port a decimal string names, or None when it is not one (0, 70000, "abc")."""
    if not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def interpolate(value: str) -> tuple[str, tuple[str, ...]]:
    """`${VAR:-13100}` -> ("13100", ("VAR",)): defaults put in, bare variables dropped."""
    names: list[str] = []

    def sub(match: re.Match[str]) -> str:
        names.append(match.group("var") or match.group("bare"))
        if match.group("op") in (":-", "-", ":=", "="):
            return match.group("default") or ""
        return ""

    return _VAR.sub(sub, value), tuple(names)


def is_local(host: str) -> bool:
    """Whether a host names this machine (or, inside a container, the container itself)."""
    return host.lower() in LOCAL_HOSTS


def url_refs(text: str, line: int, *, keys: tuple[str, ...] = (), kind: str = "url",
             names: frozenset[str] = frozenset(), side: str = "host") -> Iterator[PortRef]:
    """References of every URL with an explicit port on a local host or a known service host."""
    for match in URL.finditer(text):
        port = valid_port(match.group("port") or "")
        if port is None:
            continue
        host = match.group("host")
        path = match.group("path")
        if is_local(host):
            yield PortRef(port, line, kind, keys, None, path, "host" if side == "host" else
                          "container", False, match.group(0))
        elif host.lower() in names:
            yield PortRef(port, line, kind, keys, host.lower(), path, "container", False,
                          match.group(0))


def value_refs(value: str, line: int, key: str | None, *, names: frozenset[str] = frozenset(),
               side: str = "host", own_owner: str | None = None) -> list[PortRef]:
    """The ports an assignment `key=value` names: a bare port under a port-like key, or URLs."""
    expanded, variables = interpolate(value.strip())
    keys = tuple(k for k in (key, *variables) if k)
    expanded = expanded.strip().strip("'\"")
    port = valid_port(expanded)
    if port is not None:
        if any(PORT_KEY.search(k) for k in keys):
            kind = "env"
            return [PortRef(port, line, kind, keys, own_owner, None,
                            "host" if side == "host" else "container",
                            own_owner is not None, f"{key}={value.strip()}")]
        return []
    refs = list(url_refs(expanded, line, keys=keys, kind="env", names=names, side=side))
    if refs:
        return refs
    for part in expanded.split(","):
        pair = _HOST_PORT.match(part.strip())
        if pair and (port := valid_port(pair.group("port"))) is not None:
            host = pair.group("host")
            if is_local(host):
                refs.append(PortRef(port, line, "env", keys, None, None,
                                    "host" if side == "host" else "container", False,
                                    f"{key}={value.strip()}"))
            elif host.lower() in names:
                refs.append(PortRef(port, line, "env", keys, host.lower(), None, "container",
                                    False, f"{key}={value.strip()}"))
    return refs
