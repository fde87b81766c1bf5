"""Conflicts: two binds of one host port in one deployment unit.

A unit is what runs together: one compose project (a file and its `.override`), one `.env`,
or the servers of the checked tree. Alternative compose files are separate units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ollamamax_stack.ports.extract.dispatch import SOURCE_SUFFIXES
from ollamamax_stack.ports.findings import Finding

if TYPE_CHECKING:
    from ollamamax_stack.ports.attribution import Attribution
    from ollamamax_stack.ports.extract import PortRef

_DEFAULT_COMPOSE = frozenset({"docker-compose", "compose"})
# Tests, examples, docs and benchmarks start throwaway servers on whatever port: not the tree's.
_NOT_SERVERS = frozenset({"test", "tests", "__tests__", "spec", "e2e", "examples", "example",
                          "fixtures", "docs", "doc", "node_modules", "vendor", "benchmarks",
                          "benchmark", "bench", "training", "samples", "sample", "demo"})
_SHELL = frozenset({".sh", ".bash", ".zsh"})
# The forms by which a program of the tree states its own port: `process.env.PORT || N`,
# `.listen(N)`, `PORT = N`.
SERVER_KINDS = frozenset({"default", "listen", "assign"})


def is_test_or_example(path: Path) -> bool:
    """Whether a file is a test, an example, a doc or a benchmark rather than the tree's own.

    `path` is as shown to the user (relative to the working directory): the directories above
    the checked tree say nothing.
    """
    name = path.name.lower()
    if _NOT_SERVERS & {part.lower() for part in path.parts[:-1]}:
        return True
    return (".test." in name or ".spec." in name or name.startswith("test_")
            or name.endswith(("_test.go", "_test.py")))


def is_server_file(path: Path) -> bool:
    """Whether a source file may be one of the tree's servers (not a test, example or script)."""
    suffix = path.suffix.lower()
    return suffix in SOURCE_SUFFIXES and suffix not in _SHELL and not is_test_or_example(path)


@dataclass(frozen=True)
class Claim:
    """One bind of host ports, by whom (`who` distinguishes binders within a unit)."""

    unit: str
    who: str
    service: str | None
    file: str
    line: int
    how: str
    ports: tuple[int, ...]
    profiles: frozenset[str] = frozenset()  # compose profiles: none means every profile

    def runs_with(self, other: Claim) -> bool:
        """Whether two binders can run at once (compose services of disjoint profiles cannot)."""
        return not self.profiles or not other.profiles or bool(self.profiles & other.profiles)

    @property
    def label(self) -> str:
        """`ollama-gpu (ollama)`: the binder, and the registry service it is."""
        if self.service and self.service != self.who and "/" not in self.who:
            return f"{self.who} ({self.service})"
        return self.service or self.who


def compose_project(path: Path) -> str:
    """`dir/docker-compose.override.yml` and `dir/compose.yaml` are one project; `x.gpu.yml` not."""
    stem = path.name.lower().rsplit(".", 1)[0].replace(".override", "")
    if stem in _DEFAULT_COMPOSE:
        stem = "compose"
    return f"compose:{os.path.normpath(path.parent.absolute())}/{stem}"


def unit_of(path: Path, ref: PortRef, who: Attribution | None,
            where: str) -> tuple[str, str] | None:
    """(unit, who) for a host bind that takes part in conflicts, or None."""
    name = path.name.lower()
    if ref.kind == "publish" and ref.owner:
        return compose_project(path), ref.owner
    if ref.kind == "env" and (name == ".env" or name.startswith(".env.") or name.endswith(".env")):
        return (f"env:{where}", who.service.name) if who is not None else None
    if ref.kind in SERVER_KINDS and is_server_file(Path(where)):
        return "servers", where
    return None


def conflicts(claims: list[Claim]) -> list[Finding]:
    """A finding at each later binder of a port in a unit, naming the first binder."""
    before: dict[tuple[str, int], list[Claim]] = {}
    findings: list[Finding] = []
    reported: set[tuple[str, str, int]] = set()
    for claim in claims:
        for port in claim.ports:
            earlier_claims = before.setdefault((claim.unit, port), [])
            earlier = next((c for c in earlier_claims
                            if c.who != claim.who and c.runs_with(claim)), None)
            earlier_claims.append(claim)
            key = (claim.unit, claim.file, claim.line)
            if earlier is None or key in reported:
                continue
            reported.add(key)
            findings.append(Finding(
                "error", "conflict",
                f"port {port} is bound by both {earlier.label} ({earlier.file}:{earlier.line} "
                f"{earlier.how}) and {claim.label} ({claim.file}:{claim.line} {claim.how})",
                claim.service, port, claim.file, claim.line))
    return findings
