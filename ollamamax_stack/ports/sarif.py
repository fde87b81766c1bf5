"""Findings as a SARIF 2.1.0 log, the format GitHub code scanning uploads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from ollamamax_stack import __version__
from ollamamax_stack.ports.findings import Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# One line per code a check can report; a code missing here still gets a rule, named by itself.
RULES = {
    "drift": "A file gives a service another port than the registry does.",
    "collision": "A file binds a registry service's host port for something else.",
    "conflict": "Two binds of one host port in one deployment unit.",
    "unregistered": "A local port that belongs to no service of the registry.",
    "file-missing": "A file to check does not exist.",
    "nothing-checked": "The check read no file: the registry names none and no path was given.",
    "file-unreadable": "A file to check cannot be read as text.",
    "file-unparsable": "A file of a kind the check reads does not parse.",
    "duplicate-port": "Two services of the registry share a port.",
    "privileged": "A port below 1024 without `privileged = true`.",
    "ephemeral": "A port inside the kernel's ephemeral range.",
    "unknown-dependency": "`depends_on` names a service the registry does not have.",
    "dependency-cycle": "Services depend on each other in a cycle.",
    "command-missing": "A managed service's command is not installed.",
    "port-in-use": "A foreign process holds a port of the stack.",
    "port-held-by-stack": "The running stack already holds a port.",
    "port-unbindable": "A port of the stack cannot be bound on its address.",
    "stack-running": "The stack is running already.",
    "external-down": "An external service the stack needs does not answer.",
}
SRCROOT = "%SRCROOT%"


def _uri(file: str) -> tuple[str, bool]:
    """A file as a SARIF URI: relative (to the working directory) unless the path is absolute."""
    path = PurePosixPath(file.replace("\\", "/"))
    if path.is_absolute():
        return "file://" + quote(str(path)), False
    return quote(str(path)), True


def _rule(code: str) -> dict[str, Any]:
    text = RULES.get(code, code.replace("-", " ").capitalize() + ".")
    return {"id": code, "name": "".join(p.capitalize() for p in code.split("-")),
            "shortDescription": {"text": text}}


def _result(finding: Finding, rule_index: int, fallback_file: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": finding.level,
        "message": {"text": finding.message},
    }
    file = finding.file or fallback_file
    if file:
        uri, relative = _uri(file)
        location: dict[str, Any] = {"uri": uri}
        if relative:
            location["uriBaseId"] = SRCROOT
        physical: dict[str, Any] = {"artifactLocation": location}
        # Code scanning wants a region; a finding on a whole file points at its first line.
        region: dict[str, int] = {"startLine": finding.line or 1}
        column = getattr(finding, "column", None)  # where the model gives one
        if finding.line and isinstance(column, int) and column >= 1:
            region["startColumn"] = column
        physical["region"] = region
        result["locations"] = [{"physicalLocation": physical}]
    properties = {k: v for k, v in (("service", finding.service), ("port", finding.port))
                  if v is not None}
    if properties:
        result["properties"] = properties
    return result


def as_sarif(findings: Sequence[Finding], *, root_uri: str,
             fallback_file: str | None = None) -> str:
    """One run of the `ollamamax` tool; `root_uri` (a file:// URI ending in /) anchors paths."""
    codes = list(dict.fromkeys(f.code for f in findings))
    index = {code: i for i, code in enumerate(codes)}
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ollamamax",
                "version": __version__,
                "rules": [_rule(code) for code in codes],
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
            "results": [_result(f, index[f.code], fallback_file) for f in findings],
        }],
    }
    return json.dumps(log, indent=2)
