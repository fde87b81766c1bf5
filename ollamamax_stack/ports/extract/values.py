"""Ports inside values: plain numbers, `${VAR:-default}`, URLs and `host:port` pairs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from ollamamax_stack.ports.extract import PortRef, Side

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1", "::", "[::1]", "[::]", ""})
# From inside a container these name the host machine: a host-side port.
HOST_GATEWAYS = frozenset({"host.docker.internal", "host.containers.internal",
                           "gateway.docker.internal"})
_VAR = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-=?+])(?P<default>[^}]*))?\}"
                  r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
# Any scheme: http(s)/ws(s), but also postgresql://, redis://; userinfo allowed before the host.
URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^\s/@'\"`<>]*@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,6}))?"
    r"(?P<path>/[^\s'\"`<>)\]},;|]*)?")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(?P<port>\d{1,6})$")
# `PORT`, `API_PORT`, `db_port`: not EXPORT, REPORT, IMPORT or viewPort.
PORT_KEY = re.compile(r"(?i)(?:^|_)PORT$")
# A compose service or container host name: one DNS label, no dots (not a remote host).
_SERVICE_HOST = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def valid_port(text: str) -> int | None:
    """The port a decimal string names, or None when it is not one (0, 70000, "abc")."""
    if not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def port_problem(text: str) -> str | None:
    """Why a written number is not a port (`0`, `99999`), or None when it is one."""
    if not text.isdigit():
        return None
    port = int(text)
    if port == 0:
        return "port 0 is not a port (1-65535)"
    if port > 65535:
        return f"port {port} is out of range 1-65535"
    return None


def interpolate(value: str, env: Mapping[str, str] | None = None,
                ) -> tuple[str, tuple[str, ...]]:
    """`${VAR:-13100}` -> ("13100", ("VAR",)): a variable's value from `env` (compose's `.env`),
    else its default; a variable with neither is dropped."""
    names: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name = match.group("var") or match.group("bare")
        names.append(name)
        op = match.group("op") or ""
        if env is not None and name in env and (env[name] or not op.startswith(":")):
            return env[name]
        if op in (":-", "-", ":=", "="):
            return match.group("default") or ""
        return ""

    return _VAR.sub(sub, value), tuple(names)


def is_local(host: str) -> bool:
    """Whether a host names this machine (or, inside a container, the container itself)."""
    return host.lower() in LOCAL_HOSTS


def host_side(host: str, side: Side) -> tuple[Side, str | None] | None:
    """Where a host:port points: (side, owner) for a local or service host, None for a remote."""
    host = host.lower()
    if host in HOST_GATEWAYS:
        return "host", None
    if is_local(host):
        return side, None
    if _SERVICE_HOST.match(host):
        return "container", host
    return None


def url_refs(text: str, line: int, *, keys: tuple[str, ...] = (), kind: str = "url",
             names: frozenset[str] = frozenset(), side: Side = "host") -> Iterator[PortRef]:
    """References of every URL with an explicit port on a local host or a service host.

    A service host (one DNS label) counts when it is a known name or the URL sits under a key.
    """
    for match in URL.finditer(text):
        port_text = match.group("port") or ""
        port = valid_port(port_text)
        if port is None:
            continue
        where = host_side(match.group("host"), side)
        if where is None or (where[1] is not None and not keys and where[1] not in names):
            continue
        yield PortRef(port, line, kind, keys, where[1], match.group("path"), where[0], False,
                      match.group(0), scheme=match.group("scheme").lower())


def value_refs(value: str, line: int, key: str | None, *, names: frozenset[str] = frozenset(),
               side: Side = "host", own_owner: str | None = None) -> list[PortRef]:
    """The ports an assignment `key=value` names: a bare port under a port-like key, or URLs."""
    expanded, variables = interpolate(value.strip())
    keys = tuple(k for k in (key, *variables) if k)
    expanded = expanded.strip().strip("'\"")
    text = f"{key}={value.strip()}"
    if expanded.isdigit():
        if not any(PORT_KEY.search(k) for k in keys):
            return []
        problem = port_problem(expanded)
        port = valid_port(expanded)
        return [PortRef(port if port is not None else int(expanded[:6]), line, "env", keys,
                        own_owner, None, side, own_owner is not None, text, role="bind",
                        problem=problem)]
    refs = list(url_refs(expanded, line, keys=keys, kind="env", names=names, side=side))
    if refs:
        return [PortRef(r.port, r.line, r.kind, r.keys, r.owner, r.path, r.side, r.own, text,
                        scheme=r.scheme) for r in refs]
    for part in expanded.split(","):
        pair = _HOST_PORT.match(part.strip())
        if pair is None or (port := valid_port(pair.group("port"))) is None:
            continue
        where = host_side(pair.group("host"), side)
        if where is None or (where[1] is not None and where[1] not in names and not keys):
            continue
        refs.append(PortRef(port, line, "env", keys, where[1], None, where[0], False, text))
    return refs
