"""`ports check --fix`: turn drift findings into edits of their files, to show or to write."""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.ports.fix.expected import container_port, expected_port, host_port, side_of
from ollamamax_stack.ports.fix.lines import edit_at, edit_line, line_key
from ollamamax_stack.registry.model import Registry

FIXABLE = frozenset({"drift"})
_ALIAS = re.compile(r"(?<![\w\"'])\*[A-Za-z0-9_-]+")  # a YAML alias (`*base`), not a glob in quotes
# Byte-order marks the check decodes, each with the codec that reads the text after it.
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True)
class Encoding:
    """How a file was written, so the fixed text goes back the same way."""

    codec: str = "utf-8"
    bom: bytes = b""

    @classmethod
    def of(cls, raw: bytes) -> tuple[Encoding, str]:
        """The file's encoding and its text (UnicodeDecodeError if it is none of them)."""
        for bom, codec in BOMS:
            if raw.startswith(bom):
                return cls(codec, bom), raw[len(bom):].decode(codec)
        return cls(), raw.decode("utf-8")

    def encode(self, text: str) -> bytes:
        """The text as the file held it."""
        return self.bom + text.encode(self.codec)


@dataclass(frozen=True)
class Edit:
    """One port changed: `file:line old -> new`, and whose port it is."""

    file: str
    line: int
    old: int
    new: int
    service: str | None

    def __str__(self) -> str:
        whose = f" ({self.service})" if self.service else ""
        return f"{self.file}:{self.line} {self.old} -> {self.new}{whose}"


@dataclass(frozen=True)
class Skipped:
    """A drift finding left as it is, and why."""

    finding: Finding
    reason: str

    def __str__(self) -> str:
        return f"{self.finding.where} not fixed: {self.reason}"


@dataclass
class FixPlan:
    """The new text of each file to change, the edits in them, and what could not be fixed."""

    # shown path: (path, old text, new text, encoding)
    files: dict[str, tuple[Path, str, str, Encoding]] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def diff(self) -> str:
        """A unified diff of every change, paths as `a/FILE` and `b/FILE` like git's."""
        chunks: list[str] = []
        for shown, (_, before, after, _encoding) in self.files.items():
            chunks.extend(difflib.unified_diff(before.splitlines(keepends=True),
                                               after.splitlines(keepends=True),
                                               f"a/{shown}", f"b/{shown}"))
        return "".join(chunk if chunk.endswith("\n") else chunk + "\n\\ No newline at end of file\n"
                       for chunk in chunks)

    def write(self) -> None:
        """Write every changed file in place."""
        for path, _, after, encoding in self.files.values():
            path.write_bytes(encoding.encode(after))


def _fix_lines(registry: Registry, kind: str, text: str, findings: list[Finding],
               plan: FixPlan, shown: str) -> str:
    lines = text.splitlines(keepends=True)
    for finding in findings:
        assert finding.line is not None and finding.port is not None
        if finding.line > len(lines):
            plan.skipped.append(Skipped(finding, "the file has fewer lines now"))
            continue
        raw = lines[finding.line - 1]
        body = raw.rstrip("\r\n")
        new = expected_port(registry, finding, line_key(kind, body))
        if new is None:
            plan.skipped.append(Skipped(finding, _unclear(registry, finding)))
            continue
        column = getattr(finding, "column", None)  # where the model saw the port, if it says
        edited = None
        if new != finding.port:
            edited = (edit_at(body, column, finding.port, new) if isinstance(column, int) else
                      None) or edit_line(kind, body, finding.port, new)
        if edited is None:
            plan.skipped.append(Skipped(finding, f"no port {finding.port} to change on the line"))
            continue
        lines[finding.line - 1] = edited + raw[len(body):]
        plan.edits.append(Edit(shown, finding.line, finding.port, new, finding.service))
    return "".join(lines)


def _fix_yaml(registry: Registry, text: str, findings: list[Finding], plan: FixPlan,
              shown: str) -> str:
    from ollamamax_stack.ports.fix.yamledit import YamlChange, edit_yaml

    changes: list[YamlChange] = []
    wanted: dict[int, list[tuple[Finding, int]]] = {}
    for finding in findings:
        assert finding.line is not None and finding.port is not None
        service = registry.services.get(finding.service or "")
        side = side_of(finding)
        new = expected_port(registry, finding)
        host = new if side == "host" else (host_port(service, None) if service else None)
        container = new if side == "container" else (
            container_port(registry, service, host) if service and host is not None else None)
        shown_new = host if side == "host" else container
        if shown_new is None:
            plan.skipped.append(Skipped(finding, _unclear(registry, finding)))
            continue
        changes.append(YamlChange(finding.line, finding.port, new, host, container))
        wanted.setdefault(finding.line, []).append((finding, shown_new))
    try:
        after, edits = edit_yaml(text, changes)
    except Exception as exc:  # noqa: BLE001 - ruamel's errors have no common base worth naming
        for items in wanted.values():
            plan.skipped.extend(Skipped(f, f"ruamel.yaml cannot read it: {exc}".splitlines()[0])
                                for f, _ in items)
        return text
    edited = {edit.line for edit in edits}
    lines = text.splitlines()
    for line, items in wanted.items():
        alias = _ALIAS.search(lines[line - 1]) if line <= len(lines) else None
        for finding, new in items:
            if line in edited:
                assert finding.port is not None
                plan.edits.append(Edit(shown, line, finding.port, new, finding.service))
            elif alias:
                # An anchor may serve several services: which of them should change is the
                # user's call, not the fixer's.
                plan.skipped.append(Skipped(finding, f"the port comes from {alias.group(0)}; "
                                                     "change it where its anchor is defined"))
            else:
                plan.skipped.append(Skipped(finding, f"no port {finding.port} to change on the "
                                                     "line"))
    return after


def _unclear(registry: Registry, finding: Finding) -> str:
    service = registry.services.get(finding.service or "")
    if service is None:
        return "the finding names no service of the registry"
    ports = " and ".join(f"{name} {port}" for name, port in service.port_map.items())
    return f"{service.name} has several ports ({ports}); which one is meant is not clear"


def plan_fixes(registry: Registry, findings: Sequence[Finding]) -> FixPlan:
    """The edits that give every drifting place its registry port, nothing written yet."""
    from ollamamax_stack.ports.extract.dispatch import file_format

    plan = FixPlan()
    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.code in FIXABLE and finding.file and finding.line and finding.port:
            by_file.setdefault(finding.file, []).append(finding)
    for shown, items in by_file.items():
        path = Path(shown)
        try:
            encoding, before = Encoding.of(path.read_bytes())
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 or UTF-16 text"
            plan.skipped.extend(Skipped(f, f"cannot read the file: {reason}") for f in items)
            continue
        kind = file_format(path)
        if kind == "yaml":
            after = _fix_yaml(registry, before, items, plan, shown)
        else:
            after = _fix_lines(registry, kind, before, items, plan, shown)
        if after != before:
            plan.files[shown] = (path, before, after, encoding)
    return plan
