"""Drift: compare the ports that files give the services with the registry's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.ports.attribution import Attribution, ServiceIndex
from ollamamax_stack.ports.extract import ExtractError, PortRef
from ollamamax_stack.ports.findings import Finding, display_path
from ollamamax_stack.registry.model import Registry

MAX_FILE_BYTES = 8 * 1024 * 1024
IGNORE_PRAGMA = "ollamamax: ignore"  # on a line: that line's ports are not checked


@dataclass(frozen=True)
class _Claim:
    service: str
    file: str
    line: int
    how: str


def _read(path: Path, where: str) -> str | Finding:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return Finding("error", "file-unreadable",
                           f"larger than {MAX_FILE_BYTES // 2**20} MiB: not checked",
                           file=where)
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return Finding("error", "file-missing", "the file does not exist", file=where)
    except IsADirectoryError:
        return Finding("error", "file-unreadable", "a directory, not a file",
                       file=where)
    except OSError as exc:
        return Finding("error", "file-unreadable", f"cannot read the file: {exc.strerror or exc}",
                       file=where)
    except UnicodeDecodeError as exc:
        return Finding("error", "file-unreadable", f"not UTF-8 text (byte {exc.start})",
                       file=where)


def drift_files(registry: Registry, files: Iterable[Path] = ()) -> list[Path]:
    """The registry's declared drift files then the extra ones, each once."""
    seen: dict[Path, Path] = {}
    for path in [*(registry.path(rel) for rel in registry.stack.drift_files), *files]:
        seen.setdefault(path.resolve(), path)
    return list(seen.values())


def _drift(index: ServiceIndex, ref: PortRef, who: Attribution, where: str) -> Finding | None:
    expected = index.expected(who, ref.side)
    if ref.port in expected:
        return None
    service = who.service
    label = service.name if who.port_name in (None, "main") else f"{service.name} ({who.port_name})"
    want = "/".join(str(p) for p in sorted(expected))
    inside = " inside its container" if ref.side == "container" else ""
    message = f"{label} has port {want}{inside} in the registry, but {who.how} gives it {ref.port}"
    holder = index.port_owner.get(ref.port)
    if holder is not None and holder[0].name != service.name:
        message += f" ({ref.port} is {holder[0].name}'s port)"
    return Finding("error", "drift", message, service.name, ref.port, where, ref.line)


def _conflicts(claims: dict[int, dict[str, list[_Claim]]]) -> list[Finding]:
    """A finding at each later service's claim of a port, naming the claim that came first."""
    findings: list[Finding] = []
    for port, by_service in claims.items():
        if len(by_service) < 2:
            continue
        first_service, *others = by_service
        for other in others:
            claim = by_service[other][0]
            # Cite the first service's claim in the same file when there is one: that is the clash.
            earlier = next((c for c in by_service[first_service] if c.file == claim.file),
                           by_service[first_service][0])
            findings.append(Finding(
                "error", "conflict",
                f"port {port} is given to both {earlier.service} ({earlier.file}:{earlier.line} "
                f"{earlier.how}) and {claim.service} ({claim.file}:{claim.line} {claim.how})",
                claim.service, port, claim.file, claim.line))
    return findings


def check_drift(registry: Registry, files: Iterable[Path] = ()) -> list[Finding]:
    """Drift, conflicts and unregistered local ports in the declared files and `files`."""
    from ollamamax_stack.ports.extract.dispatch import extract

    index = ServiceIndex(registry)
    findings: list[Finding] = []
    claims: dict[int, dict[str, list[_Claim]]] = {}
    for path in drift_files(registry, files):
        where = display_path(path)
        text = _read(path, where)
        if isinstance(text, Finding):
            findings.append(text)
            continue
        try:
            refs = extract(path, text, index.names)
        except ExtractError as exc:
            findings.append(Finding("error", "file-unparsable", str(exc),
                                    file=where, line=exc.line))
            continue
        context = index.context(path)
        if IGNORE_PRAGMA in text:
            ignored = {n for n, line in enumerate(text.splitlines(), 1) if IGNORE_PRAGMA in line}
            refs = [ref for ref in refs if ref.line not in ignored]
        reported: set[tuple[int, str, int]] = set()
        for ref in refs:
            who = index.attribute(ref, context)
            if who is None:
                if not index.known(ref.port, ref.side) and (ref.line, "", ref.port) not in reported:
                    reported.add((ref.line, "", ref.port))
                    findings.append(Finding(
                        "warning", "unregistered",
                        f"port {ref.port} ({ref.text or ref.kind}) belongs to no service of the "
                        "registry", None, ref.port, where, ref.line))
                continue
            if ref.side == "host":
                mine = claims.setdefault(ref.port, {}).setdefault(who.service.name, [])
                if not mine or mine[-1].file != where:  # the first claim in each file
                    mine.append(_Claim(who.service.name, where, ref.line, who.how))
            finding = _drift(index, ref, who, where)
            key = (ref.line, who.service.name, ref.port)
            if finding is not None and key not in reported:
                reported.add(key)
                findings.append(finding)
    findings.extend(_conflicts(claims))
    return findings
