"""How the stack commands print: coloured `service |` prefixes, the status table, down's verdict."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry
    from ollamamax_stack.supervise.lifecycle import DownResult
    from ollamamax_stack.supervise.state import State

# (service name or "" for ollamamax itself, line): one line of the multiplexed output.
Show = Callable[[str, str], None]


def line_printer(names: list[str], registry: Registry) -> Show:
    """A thread-safe printer that prefixes each line with its service's coloured name."""
    from ollamamax_stack.supervise.logs import color

    colors = {s.name: color(i) for i, s in enumerate(registry.active)}
    width = max([len(n) for n in names] + [len("ollamamax")])
    lock = threading.Lock()

    def show(name: str, line: str) -> None:
        label = name or "ollamamax"
        tag = typer.style(f"{label:<{width}} |", fg=colors.get(label, "white"), bold=not name)
        if not name and line.startswith("warning:"):
            line = typer.style(line, fg="yellow")
        with lock:
            typer.echo(f"{tag} {line}")

    return show


def print_table(registry: Registry, state: State) -> None:
    """The stack as a table: service, state, ports, URL, pid, ready after N ms."""
    from rich.console import Console
    from rich.table import Table

    from ollamamax_stack.supervise.machine import Status

    table = Table(title=f"{registry.stack.name}: {state.stack()}")
    for column in ("service", "state", "ports", "URL", "pid", "ready after"):
        table.add_column(column)
    for entry in state.services.values():
        ports = ", ".join(str(p) if n == "main" else f"{n}={p}" for n, p in entry.ports.items())
        fine = entry.state in (Status.READY, Status.COMPLETED)  # a task that ran is as it should be
        ready = f"{entry.ready_ms} ms" if fine and entry.ready_ms is not None else "-"
        label = entry.state.value if fine else f"{entry.state}: {entry.reason or ''}"
        table.add_row(entry.name, label, ports, entry.url,
                      str(entry.pid) if entry.pid else ("external" if entry.external else "-"),
                      ready, style=None if fine else "yellow")
        for worker in entry.workers:  # a held service's processes, one row each
            table.add_row(f"  {worker['name']}", f"{worker['state']} ({worker['slot'] or '-'})",
                          "", "", str(worker["pid"] or "-"), "",
                          style=None if worker["state"] != "down" else "yellow")
    # Off a terminal (pipes, CI logs) rich would cut URLs at 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def report_down(result: DownResult, show: Show) -> None:
    """Say what `down` found; exit 1 when a process or a port of the stack is left."""
    if result.ended:
        show("", f"ended {result.ended} stray process(es) of the stack")
    for line in result.leftovers:
        show("", typer.style(f"could not end {line}", fg="red"))
    for line in result.busy_ports:
        show("", typer.style(line, fg="red"))
    if result.leftovers or result.busy_ports:
        raise typer.Exit(1)
    show("", "stack is down: no process left, every port free")
