"""Drift extractors: one module per file format, each turning text into port references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal["host", "container"]


@dataclass(frozen=True)
class PortRef:
    """One port named in a file, with what the text says about whose port it is."""

    port: int
    line: int
    kind: str  # what the text is: env, url, publish, expose, listen, upstream, target, default
    keys: tuple[str, ...] = ()  # env keys / variables the port sits under, innermost last
    owner: str | None = None  # compose service, upstream, job or URL host the port belongs to
    path: str | None = None  # the URL path, which endpoints can attribute to a service
    side: Side = "host"  # a host port, or a port inside a container network
    own: bool = False  # the port its file's own service listens on (PORT, listen, EXPOSE)
    text: str = ""  # the words of the file, for messages

    def moved(self, line_offset: int) -> PortRef:
        """The same reference, its line shifted (text embedded in a larger file)."""
        return PortRef(self.port, self.line + line_offset, self.kind, self.keys, self.owner,
                       self.path, self.side, self.own, self.text)


class ExtractError(Exception):
    """A file that cannot be parsed in its format; `line` where the parser stopped."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
