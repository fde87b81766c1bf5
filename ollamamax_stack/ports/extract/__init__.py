"""Drift extractors: one module per file format, each turning text into port references."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Side = Literal["host", "container"]
Role = Literal["bind", "ref"]


@dataclass(frozen=True)
class PortRef:
    """One port named in a file, with what the text says about whose port it is."""

    port: int
    line: int
    kind: str  # what the text is: env, url, publish, expose, listen, upstream, target, default
    keys: tuple[str, ...] = ()  # env keys / variables the port sits under, innermost last
    owner: str | None = None  # the compose service the port sits in, or a URL's host name
    path: str | None = None  # the URL path
    side: Side = "host"  # a host port, or a port inside a container network
    own: bool = False  # the port its file's (or compose entry's) own server listens on
    text: str = ""  # the words of the file, for messages
    role: Role = "ref"  # binds a port (a server listens on it) or refers to one
    column: int | None = None  # 1-based column of the port's digits on `line`
    image: str | None = None  # the image of the compose service `owner`, when the file says
    last: int | None = None  # a range `port-last` (one finding for the whole range)
    scheme: str | None = None  # a URL's scheme (`redis`, `postgresql`, `http`)
    problem: str | None = None  # why the written port is not a port (0, 99999, a reversed range)
    profiles: tuple[str, ...] = ()  # the compose profiles of the service `owner` (none: always)

    @property
    def ports(self) -> range:
        """Every port of the reference (one, or a range)."""
        return range(self.port, (self.last if self.last is not None else self.port) + 1)

    @property
    def label(self) -> str:
        """`8080` or `8000-8010`."""
        return f"{self.port}-{self.last}" if self.last is not None else str(self.port)

    def moved(self, line_offset: int) -> PortRef:
        """The same reference, its line shifted (text embedded in a larger file)."""
        return replace(self, line=self.line + line_offset)


class ExtractError(Exception):
    """A file that cannot be parsed in its format; `line` where the parser stopped."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
