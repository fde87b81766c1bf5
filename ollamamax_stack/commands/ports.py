"""`ollamamax ports list|check|who`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollamamax_stack.commands import common

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry

ports_app = typer.Typer(help="List, check and explain the stack's ports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `ports` group to the root app."""
    app.add_typer(ports_app, name="ports")


def _listing(registry: Registry) -> list[dict[str, Any]]:
    rows = []
    for service in registry.services.values():
        rows.append({
            "name": service.name,
            "ports": service.port_map,
            "host": registry.bind_host(service),
            "managed": service.managed,
            "task": service.task,
            "optional": service.optional,
            "profiles": service.profiles or ["*"],
            "active": service.in_profile(registry.profile),
            "url": registry.url(service),
            "depends_on": service.depends_on,
        })
    return rows


@ports_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every service of the registry with its ports, address and dependencies."""
    registry = common.registry(ctx)
    rows = _listing(registry)
    if as_json:
        typer.echo(json.dumps({"services": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ollamamax ports (profile {registry.profile}; "
                        "dim: not in this profile)")
    for column in ("service", "port(s)", "bind", "kind", "profile", "url", "depends on"):
        table.add_column(column, no_wrap=column in ("service", "port(s)", "url"))
    for row in rows:
        ports = ", ".join(f"{p}" if n == "main" else f"{n}={p}" for n, p in row["ports"].items())
        kind = "task" if row["task"] else "managed" if row["managed"] else "external"
        if row["optional"]:
            kind += " (optional)"
        style = None if row["active"] else "dim"
        table.add_row(row["name"], ports, row["host"], kind, ",".join(row["profiles"]),
                      row["url"], ", ".join(row["depends_on"]) or "-", style=style)
    import sys

    # Off a terminal (pipes, CI logs) rich would squeeze the table into 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@ports_app.command("check")
def check(
    ctx: typer.Context,
    files: Annotated[list[Path] | None, typer.Argument(
        help="Files and directories to check beside the registry's drift_files; a directory "
             "is walked honouring .gitignore, `-` reads a file list (`git ls-files`) from stdin.",
        metavar="PATH...")] = None,
    no_host: Annotated[bool, typer.Option(
        "--no-host", help="Skip the host checks (bindable ports, external services).")] = False,
    output: Annotated[str, typer.Option(
        "--format", "-f",
        help="text, json, github (workflow annotations) or sarif (code scanning).")] = "text",
    strict: Annotated[bool, typer.Option(
        "--strict", help="Warnings fail the check too.")] = False,
    fix: Annotated[bool, typer.Option(
        "--fix", help="Rewrite drifting ports to the registry's, then check again.")] = False,
    diff: Annotated[bool, typer.Option(
        "--diff", help="Print what --fix would change as a unified diff; write nothing.")] = False,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", metavar="GLOB",
        help="Leave out files matching GLOB (repeatable), beside the registry's "
             "checks.exclude.")] = None,
) -> None:
    """Check the registry, this host and the files that name ports; exit 1 on errors."""
    from ollamamax_stack.commands.check_run import CheckOptions, run_check

    code = run_check(common.options(ctx), CheckOptions(
        files=files or [], no_host=no_host, output=output, strict=strict, fix=fix, diff=diff,
        exclude=exclude or []))
    if code:
        raise typer.Exit(code)


@ports_app.command("who")
def who(
    ctx: typer.Context,
    ports: Annotated[list[int], typer.Argument(help="Ports to look up.", metavar="PORT...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Who listens on each PORT (IPv4 and IPv6): pid, user, command line, start time."""
    from ollamamax_stack.errors import OllamamaxError, UsageError
    from ollamamax_stack.ports import who as who_

    bad = [p for p in ports if not 1 <= p <= 65535]
    if bad:
        raise UsageError(f"port {bad[0]} is out of range 1-65535")
    names: dict[int, str] = {}
    run_dir = None
    try:
        registry = common.registry(ctx)
    except OllamamaxError:
        registry = None  # `who` is useful on any host, with or without a registry
    if registry is not None:
        run_dir = registry.run_dir
        for service in registry.services.values():
            for port_name, port in service.port_map.items():
                names[port] = service.name if port_name == "main" else f"{service.name}.{port_name}"
    held = who_.holders(list(dict.fromkeys(ports)))
    if as_json:
        typer.echo(json.dumps({"ports": [who_.as_dict(p, h, names.get(p), run_dir)
                                         for p, h in held.items()]}, indent=2))
        return
    for port, listeners in held.items():
        for line in who_.as_lines(port, listeners, names.get(port), run_dir):
            typer.echo(line)
