"""`ollamamax ports list|check|who`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ollamamax_stack.commands import common

ports_app = typer.Typer(help="List, check and explain the stack's ports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `ports` group to the root app."""
    app.add_typer(ports_app, name="ports")


def _listing(ctx: typer.Context) -> list[dict[str, Any]]:
    registry = common.registry(ctx)
    rows = []
    for service in registry.services.values():
        rows.append({
            "name": service.name,
            "ports": service.port_map,
            "host": registry.bind_host(service),
            "managed": service.managed,
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
    rows = _listing(ctx)
    if as_json:
        typer.echo(json.dumps({"services": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ollamamax ports")
    for column in ("service", "port(s)", "bind", "kind", "profile", "url", "depends on"):
        table.add_column(column)
    for row in rows:
        ports = ", ".join(f"{p}" if n == "main" else f"{n}={p}" for n, p in row["ports"].items())
        kind = "managed" if row["managed"] else "external"
        if row["optional"]:
            kind += " (optional)"
        style = None if row["active"] else "dim"
        table.add_row(row["name"], ports, row["host"], kind, ",".join(row["profiles"]),
                      row["url"], ", ".join(row["depends_on"]) or "-", style=style)
    Console().print(table)
