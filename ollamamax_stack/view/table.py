"""The stack as a rich table: `status` and `status --watch`."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ollamamax_stack.view.rows import COLUMNS
from ollamamax_stack.view.snapshot import Snapshot


def render(name: str, snapshot: Snapshot) -> RenderableType:
    """The table, then the supervisor's line and why the stack is not fully up."""
    table = Table(title=f"{name}: {snapshot.stack}")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("CPU", "MEM", "RESTARTS")
                         else "left")
    for row in snapshot.rows:
        table.add_row(*row.cells(), style=None if row.healthy else "yellow")
    verdict = "failed" if snapshot.stack == "failed" else "degraded"
    lines = [Text(snapshot.supervision),
             *(Text(f"{verdict}: {reason}") for reason in snapshot.reasons)]
    return Group(table, *lines)
