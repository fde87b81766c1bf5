"""`ports check` itself, free of typer so the start-up fast path can run it from bare argv."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ollamamax_stack.commands.common import GlobalOptions

FORMATS = ("text", "json", "github", "sarif")


@dataclass(frozen=True)
class CheckOptions:
    """The options of `ports check`, as typer or the fast path parsed them."""

    files: list[Path] = field(default_factory=list)
    no_host: bool = False
    output: str = "text"
    strict: bool = False
    fix: bool = False
    diff: bool = False
    exclude: list[str] = field(default_factory=list)


def run_check(globals_: GlobalOptions, options: CheckOptions) -> int:
    """Run the check, print the findings in the chosen format, and return the exit code."""
    from ollamamax_stack.commands.common import load_registry_for
    from ollamamax_stack.errors import UsageError
    from ollamamax_stack.ports import report
    from ollamamax_stack.ports.drift import scan
    from ollamamax_stack.ports.registry_checks import check_registry
    from ollamamax_stack.ports.scope import exclusions, extra_files

    if options.output not in FORMATS:
        raise UsageError(f"--format {options.output!r} is not one of {', '.join(FORMATS)}")
    registry = load_registry_for(globals_)
    paths = [*extra_files(registry), *options.files]
    excluded = exclusions(registry, options.exclude, Path.cwd()).excluded
    findings = check_registry(registry)
    if registry.stack.env_files or any(s.env_files for s in registry.managed):
        from ollamamax_stack.ports.envfile_checks import check_env_files

        findings += check_env_files(registry)
    if not options.no_host:
        from ollamamax_stack.ports.host_checks import check_host

        findings += check_host(registry, running_ok=True)
    scanned = scan(registry, paths, excluded)
    if options.fix or options.diff:
        from ollamamax_stack.ports.fix import plan_fixes

        plan = plan_fixes(registry, scanned.findings)
        if options.diff:
            report.print_diff(plan)
            return 1 if plan.files else 0
        plan.write()
        report.print_fixes(plan, machine=options.output != "text")
        if plan.files:
            scanned = scan(registry, paths, excluded)
    findings += scanned.findings
    if scanned.read == 0:
        # A check of no file passes anything: say so rather than `ok`.
        from ollamamax_stack.ports.findings import Finding, display_path

        why = (f"{scanned.skipped} skipped or excluded" if paths else
               f"{display_path(registry.source)} names no drift_files and no path was given "
               "(try `ollamamax ports check .`)")
        findings.append(Finding("warning", "nothing-checked", f"no file was read: {why}"))
    if options.output == "json":
        sys.stdout.write(report.as_json(findings, options.strict) + "\n")
    elif options.output == "github":
        if findings:
            sys.stdout.write(report.as_github(findings) + "\n")
    elif options.output == "sarif":
        from ollamamax_stack.ports.findings import display_path
        from ollamamax_stack.ports.sarif import as_sarif

        sys.stdout.write(as_sarif(findings, root_uri=Path.cwd().as_uri() + "/",
                                  fallback_file=display_path(registry.source)) + "\n")
    else:
        checked = f"{len(registry.services)} services, " + (
            "host skipped" if options.no_host else f"host checked for profile {registry.profile}"
        ) + f"; {scanned.read} files read, {scanned.skipped} skipped"
        report.print_text(findings, checked)
    return report.exit_code(findings, options.strict)
