"""Files against the registry: drift, collisions, conflicts (README, "What `ports check` reports").

Where this sits in a check: ARCHITECTURE §4.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ollamamax_stack.ports.attribution import Attribution, ServiceIndex
from ollamamax_stack.ports.conflicts import (
    SERVER_KINDS,
    Claim,
    compose_project,
    conflicts,
    is_server_file,
    is_test_or_example,
    unit_of,
)
from ollamamax_stack.ports.extract import ExtractError, PortRef
from ollamamax_stack.ports.findings import Finding, display_path
from ollamamax_stack.ports.inputs import expand, is_vendored
from ollamamax_stack.ports.reading import NotRead, Unreadable, read_text
from ollamamax_stack.registry.model import Registry, Service

IGNORE_PRAGMA = "ollamamax: ignore"  # on a line: that line's ports are not checked
_READ_KINDS = frozenset({"dotenv", "dockerfile", "nginx"})


@dataclass
class Scan:
    """What a check of files found, and how many files it read and skipped."""

    findings: list[Finding] = field(default_factory=list)
    read: int = 0
    skipped: int = 0


def _column(lines: list[str], ref: PortRef) -> int | None:
    if not 0 < ref.line <= len(lines):
        return None
    line = lines[ref.line - 1]
    start = max(line.find(ref.text), 0) if ref.text else 0
    pattern = re.compile(rf"(?<!\d){ref.port}(?!\d)")
    match = pattern.search(line, start) or pattern.search(line)
    return match.start() + 1 if match else None


def _label(who: Attribution) -> str:
    if who.port_name in (None, "main"):
        return who.service.name
    return f"{who.service.name} ({who.port_name})"


class _FileCheck:
    """The findings of one file's references, and its binds for the conflict check."""

    def __init__(self, index: ServiceIndex, path: Path, where: str, text: str,
                 named: bool, kind: str) -> None:
        self.index = index
        self.path = path
        self.kind = kind
        self.where = where
        self.lines = text.splitlines()
        self.named = named
        self.findings: list[Finding] = []
        self.claims: list[Claim] = []
        self.relevant = False
        self._seen: set[tuple[str, int, int]] = set()

    def _add(self, ref: PortRef, finding: Finding) -> None:
        key = (finding.code, ref.line, finding.port or 0)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(finding)

    def _drift(self, ref: PortRef, who: Attribution) -> None:
        expected = self.index.expected(who, ref.side)
        if expected & set(ref.ports):
            return
        if who.loose:
            if not any(p in self.index.port_owner for p in ref.ports):
                self._add(ref, Finding(
                    "warning", "unregistered",
                    f"`{ref.text}` binds {ref.label}, a port of {who.service.name} the registry "
                    "does not list (name it in `ports`)", who.service.name, ref.port,
                    self.where, ref.line, None, _column(self.lines, ref)))
            return
        want = "/".join(str(p) for p in sorted(expected))
        inside = " inside its container" if ref.side == "container" else ""
        message = (f"{_label(who)} has port {want}{inside} in the registry, but {who.how} "
                   f"gives it {ref.label}")
        holder = self.index.port_owner.get(ref.port)
        if holder is not None and holder[0].name != who.service.name and ref.side == "host":
            message += f" ({ref.port} is {holder[0].name}'s port)"
        self._add(ref, Finding("error", "drift", message, who.service.name, ref.port, self.where,
                               ref.line, min(expected) if len(expected) == 1 else None,
                               _column(self.lines, ref)))

    def _unattributed_bind(self, ref: PortRef) -> bool:
        """Whether a bind is a server's own port even when nothing says whose server it is."""
        if ref.kind == "publish" or ref.kind == "listen" and self.kind == "nginx":
            return True
        return ref.kind in SERVER_KINDS and is_server_file(Path(self.where))

    def _collision(self, ref: PortRef, who: Attribution | None) -> None:
        if who is None and not self._unattributed_bind(ref):
            return
        hits = [(port, owner[0].name) for port in ref.ports
                if (owner := self.index.port_owner.get(port)) is not None
                and (who is None or owner[0].name != who.service.name)]
        if not hits:
            return
        port, victim = hits[0]
        owners = ", ".join(f"{name}'s {p}" for p, name in hits)
        what = f"`{ref.text}`" if ref.text else ref.kind
        if ref.kind == "publish" and ref.owner:
            what += f" of compose service {ref.owner}"
        if who is not None:
            tail = f"; {who.how} makes it {who.service.name}'s"
        else:
            # Nothing says whose it is: the victim itself under a name the registry lacks?
            tail = (f"; if this is {victim}, name it in the registry (compose_names, images "
                    "or config_files)")
        self._add(ref, Finding(
            "error", "collision",
            f"{what} binds host port {ref.label}, {owners} in the registry{tail}",
            victim, port, self.where, ref.line, None, _column(self.lines, ref)))

    def check(self, ref: PortRef, context: Service | None) -> None:
        """Every finding one reference gives, and its claim on a host port."""
        index = self.index
        who = index.attribute(ref, context, self.named)
        if ref.problem is not None:
            if ref.kind in ("publish", "expose", "listen") or who is not None:
                self._add(ref, Finding("error", "port-invalid", f"{ref.text}: {ref.problem}",
                                       who.service.name if who else None, ref.port, self.where,
                                       ref.line, None, _column(self.lines, ref)))
            return
        if who is not None:
            self.relevant = True
            self._drift(ref, who)
        # A server's own port in a file the registry gives to a service binds, listen or not.
        binds = ref.role == "bind" or (who is not None and ref.own and ref.kind in SERVER_KINDS)
        if binds:
            self.relevant = True
            if ref.side == "host":
                self._collision(ref, who)
                unit = unit_of(self.path, ref, who, self.where)
                if unit is not None:
                    self.claims.append(Claim(unit[0], unit[1], who.service.name if who else None,
                                             self.where, ref.line, ref.text or ref.kind,
                                             tuple(ref.ports)[:1024], frozenset(ref.profiles)))
        if (who is None and self.named and ref.side == "host"
                and not any(p in index.port_owner for p in ref.ports)):
            self._add(ref, Finding("warning", "unregistered",
                                   f"port {ref.label} ({ref.text or ref.kind}) belongs to no "
                                   "service of the registry", None, ref.port, self.where,
                                   ref.line, None, _column(self.lines, ref)))


def _inputs(registry: Registry, paths: Iterable[Path],
            excluded: Callable[[Path, bool], bool] | None) -> list[tuple[Path, bool]]:
    seen: dict[Path, tuple[Path, bool]] = {}
    declared = [(registry.path(rel), True) for rel in registry.stack.drift_files]
    for path, explicit in [*declared, *expand(list(paths))]:
        if excluded is None or not excluded(path, explicit):
            seen.setdefault(path.absolute(), (path, explicit))
    return list(seen.values())


def scan(registry: Registry, paths: Iterable[Path] = (),
         excluded: Callable[[Path, bool], bool] | None = None) -> Scan:
    """Check the registry's drift files and `paths` (files or directories) against it.

    `excluded` leaves out files, those found in a directory's walk too (`--exclude GLOB`).
    """
    from ollamamax_stack.ports.extract.dispatch import Skipped, extract, file_format, skip_reason

    index = ServiceIndex(registry)
    result = Scan()
    claims: list[Claim] = []
    merged: dict[str, str] = {}  # an included compose project -> the project including it
    envs: dict[Path, dict[str, str]] = {}  # each compose directory's `.env`
    for path, explicit in _inputs(registry, paths, excluded):
        where = display_path(path)
        named = index.named(path, where)
        kind = file_format(path)
        # Tests and examples hold wrong ports on purpose (fakes, fixtures): their source is no
        # configuration of the tree; their compose and .env files are still read. Vendored
        # code is skipped even when a `git ls-files` list names it.
        shown = Path(where)
        if not named and (skip_reason(path) is not None or is_vendored(shown)
                          or kind == "source" and is_test_or_example(shown)):
            result.skipped += 1
            continue
        text = read_text(path, must_read=named or kind in _READ_KINDS)
        if isinstance(text, NotRead):
            result.skipped += 1
            continue
        if isinstance(text, Unreadable):
            if text.code == "file-missing" and not explicit:
                result.skipped += 1  # listed by git, deleted since (or a dangling link)
                continue
            result.findings.append(Finding("error", text.code, text.message, file=where))
            continue
        env = _project_env(path.parent, envs) if kind == "yaml" else None
        try:
            refs = extract(path, text, index.names, named=named, env=env)
        except Skipped:
            result.skipped += 1
            continue
        except ExtractError as exc:
            result.findings.append(Finding("error", "file-unparsable", str(exc), file=where,
                                           line=exc.line))
            continue
        ignored = {n for n, line in enumerate(text.splitlines(), 1)
                   if IGNORE_PRAGMA in line} if IGNORE_PRAGMA in text else set()
        checker = _FileCheck(index, path, where, text, named, kind)
        context = index.context(path, where)
        for ref in refs:
            if ref.line not in ignored:
                checker.check(ref, context)
        if kind == "source" and not named and not checker.relevant:
            result.skipped += 1  # a source file that binds nothing the registry cares about
            continue
        result.read += 1
        result.findings.extend(checker.findings)
        claims.extend(checker.claims)
        if kind == "yaml" and "include" in text:
            merged.update(_included(path, text))
    result.findings.extend(conflicts([replace(c, unit=merged.get(c.unit, c.unit))
                                      for c in claims]))
    return result


def _project_env(directory: Path, cache: dict[Path, dict[str, str]]) -> dict[str, str]:
    """The `.env` beside a compose file, which compose substitutes into it ({} without one)."""
    from ollamamax_stack.ports.extract.dotenv import assignments

    if directory not in cache:
        text = read_text(directory / ".env", must_read=False)
        cache[directory] = assignments(text) if isinstance(text, str) else {}
    return cache[directory]


def _included(path: Path, text: str) -> dict[str, str]:
    """Each compose project a file's `include:` merges, mapped to the file's own project."""
    from ollamamax_stack.ports.extract.compose import includes

    try:
        names = includes(text)
    except ExtractError:
        return {}
    return {compose_project(path.parent / name): compose_project(path) for name in names}


def check_drift(registry: Registry, files: Iterable[Path] = (),
                excluded: Callable[[Path, bool], bool] | None = None) -> list[Finding]:
    """Drift, collisions and conflicts in the declared drift files and `files`."""
    return scan(registry, files, excluded).findings
