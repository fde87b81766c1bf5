"""Print findings as text, JSON or GitHub annotations; decide the exit code (ARCHITECTURE §4)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ollamamax_stack.ports.findings import Finding

if TYPE_CHECKING:
    from ollamamax_stack.ports.fix import FixPlan



def exit_code(findings: Sequence[Finding], strict: bool = False) -> int:
    """1 when there is an error (or, strictly, a warning), else 0."""
    failing = {"error", "warning"} if strict else {"error"}
    return 1 if any(f.level in failing for f in findings) else 0


def as_json(findings: Sequence[Finding], strict: bool = False) -> str:
    """`{"ok": bool, "findings": [...]}`."""
    return json.dumps({"ok": exit_code(findings, strict) == 0,
                       "findings": [f.as_dict() for f in findings]}, indent=2)


def _escape(text: str, *, property_value: bool = False) -> str:
    # GitHub's workflow-command encoding; property values also escape ':' and ','.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def as_github(findings: Sequence[Finding]) -> str:
    """One `::error file=F,line=L,title=CODE::message` line per finding."""
    lines = []
    for finding in findings:
        props = []
        if finding.file:
            props.append(f"file={_escape(finding.file, property_value=True)}")
        if finding.line:
            props.append(f"line={finding.line}")
        props.append(f"title={_escape(finding.code, property_value=True)}")
        lines.append(f"::{finding.level} {','.join(props)}::{_escape(finding.message)}")
    return "\n".join(lines)


def summary(findings: Sequence[Finding]) -> str:
    """`2 errors, 1 warning` or `no findings`."""
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return "no findings"
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts)


def print_text(findings: Sequence[Finding], checked: str, out: TextIO | None = None) -> None:
    """`file:line level code message`, one line each, then a summary line."""
    out = out or sys.stdout
    if not findings:
        out.write(f"ports check: ok ({checked})\n")
        return
    # rich costs tens of milliseconds to import: only a run with something to say pays it.
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=out, soft_wrap=True, highlight=False)
    for finding in findings:
        colour = "red" if finding.level == "error" else "yellow"
        where = f"{escape(finding.where)} " if finding.where else ""
        console.print(f"{where}[{colour}]{finding.level}[/] [bold]{finding.code}[/] "
                      f"{escape(finding.message)}")
    console.print(f"ports check: {summary(findings)} ({checked})")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def print_fixes(plan: FixPlan, *, machine: bool = False) -> None:
    """`fixed FILE:LINE OLD -> NEW (service)` per edit; on stderr when stdout carries a format."""
    out = sys.stderr if machine else sys.stdout
    for edit in plan.edits:
        out.write(f"fixed {edit}\n")
    for skipped in plan.skipped:
        out.write(f"{skipped}\n")
    if plan.edits:
        out.write(f"ports check: fixed {_plural(len(plan.edits), 'port')} in "
                  f"{_plural(len(plan.files), 'file')}\n")


def print_diff(plan: FixPlan) -> None:
    """The unified diff on stdout; what it amounts to (or that nothing would change) on stderr."""
    sys.stdout.write(plan.diff())
    for skipped in plan.skipped:
        sys.stderr.write(f"{skipped}\n")
    if plan.edits:
        sys.stderr.write(f"ports check: --fix would fix {_plural(len(plan.edits), 'port')} in "
                         f"{_plural(len(plan.files), 'file')}\n")
    else:
        sys.stderr.write("ports check: nothing to fix\n")
