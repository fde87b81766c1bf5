"""Dockerfiles: `EXPOSE`, `ENV`/`ARG` assignments, and URLs in `HEALTHCHECK`/`CMD`/`RUN`."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from ollamamax_stack.ports.extract import PortRef
from ollamamax_stack.ports.extract.values import interpolate, url_refs, valid_port, value_refs

_INSTRUCTION = re.compile(r"^\s*(?P<word>[A-Za-z]+)\s+(?P<rest>.*)$")


def _instructions(text: str) -> list[tuple[str, str, int]]:
    """(INSTRUCTION, arguments, first line), backslash continuations joined."""
    found: list[tuple[str, str, int]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        match = _INSTRUCTION.match(pending + raw)
        pending = ""
        if match:
            found.append((match.group("word").upper(), match.group("rest"), start))
    return found


def _assignments(rest: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest, posix=True)
    except ValueError:
        words = rest.split()
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]  # the legacy `ENV KEY value` form
    return [(k, v) for k, _, v in (w.partition("=") for w in words) if k]


def extract_dockerfile(text: str, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """Ports an image exposes, sets in its environment, or probes in its health check."""
    refs: list[PortRef] = []
    for word, rest, line in _instructions(text):
        if word == "EXPOSE":
            for item in rest.split():
                expanded, variables = interpolate(item.split("/")[0])
                port = valid_port(expanded)
                if port is not None:
                    refs.append(PortRef(port, line, "expose", variables, None, None, "container",
                                        True, f"EXPOSE {item}", role="bind"))
        elif word in ("ENV", "ARG"):
            for key, value in _assignments(rest):
                # An image's environment is what its process sees inside the container.
                refs.extend(value_refs(value, line, key, names=names, side="container"))
        elif word in ("HEALTHCHECK", "CMD", "RUN", "ENTRYPOINT"):
            for ref in url_refs(rest, line, kind="healthcheck" if word == "HEALTHCHECK" else "url",
                                names=names, side="container"):
                # Inside the image, localhost is the image's own service.
                refs.append(replace(ref, own=ref.owner is None and ref.side == "container"))
    return refs
