"""The table of `top`: rows drawn as one text, a cursor, scrolled to keep the cursor in sight.

Textual's DataTable renders every cell again whenever one changes, and an age column changes
every second: at 12 services that alone cost more than `top`'s whole budget. This widget draws
the visible lines as one `rich.text.Text`, once per change of what it shows.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from ollamamax_stack.view.rows import Row

# Narrowest useful first, so 80 columns show the state, port, pid and the process's figures.
COLUMNS = ("SERVICE", "STATE", "PORTS", "PID", "CPU", "MEM", "AGE", "RESTARTS", "READY AFTER",
           "SLOT", "URL")
RIGHT = frozenset({"CPU", "MEM", "RESTARTS"})
STATE_WIDTH = 24  # a long reason is cut here; the bar above the log shows it whole
GAP = 2


def cells(row: Row) -> tuple[str, ...]:
    """A row in COLUMNS' order."""
    name = f"  {row.key}" if row.is_worker else row.key
    label = row.label if len(row.label) <= STATE_WIDTH else row.label[:STATE_WIDTH - 1] + "…"
    return (name, label, row.ports, str(row.pid) if row.pid else "-", row.cpu, row.mem,
            row.age, row.restarts, row.ready_after, row.slot, row.url)


class StackGrid(Widget, can_focus=True):
    """Services and workers, one line each; up/down select, left/right scroll the columns."""

    DEFAULT_CSS = "StackGrid { height: auto; max-height: 50%; text-wrap: nowrap; }"
    BINDINGS = [Binding("up", "move(-1)", show=False), Binding("down", "move(1)", show=False),
                Binding("left", "scroll_columns(-1)", show=False),
                Binding("right", "scroll_columns(1)", show=False)]

    class Highlighted(Message):
        """The cursor is on another row."""

        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 — Textual's name
        super().__init__(id=id)
        self.rows: list[Row] = []
        self.cursor = 0
        self._first_column = 1  # the first column shown after SERVICE (left/right move it)
        self._top = 0  # the first row shown

    def show(self, rows: list[Row]) -> None:
        """New rows; the cursor stays on the row it was on (by its id) when that row remains."""
        selected = self.selected
        if rows == self.rows:
            return
        grown = len(rows) != len(self.rows)
        self.rows = rows
        ids = [r.row_id for r in rows]
        self.cursor = ids.index(selected.row_id) if selected and selected.row_id in ids else (
            min(self.cursor, max(len(rows) - 1, 0)))
        self.refresh(layout=grown)  # a layout of the whole screen costs more than a redraw
        if self.selected is not None and (selected is None
                                          or selected.row_id != self.selected.row_id):
            self.post_message(self.Highlighted(self.selected))

    @property
    def selected(self) -> Row | None:
        """The row under the cursor."""
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def lines(self) -> list[str]:
        """Every row as the text of its cells (all columns), for a reader or a test."""
        return ["  ".join(cells(row)) for row in self.rows]

    def action_move(self, by: int) -> None:
        if not self.rows:
            return
        moved = max(0, min(len(self.rows) - 1, self.cursor + by))
        if moved != self.cursor:
            self.cursor = moved
            self.refresh()
            self.post_message(self.Highlighted(self.rows[moved]))

    def action_scroll_columns(self, by: int) -> None:
        self._first_column = max(1, min(len(COLUMNS) - 1, self._first_column + by))
        self.refresh()

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return len(self.rows) + 1

    def render(self) -> Text:
        table = [COLUMNS, *(cells(row) for row in self.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        shown = [0, *range(self._first_column, len(COLUMNS))]
        visible = max(self.size.height - 1, 1)
        if self.cursor < self._top:
            self._top = self.cursor
        elif self.cursor >= self._top + visible:
            self._top = self.cursor - visible + 1
        text = Text(no_wrap=True, overflow="crop", end="")
        width = self.size.width
        text.append(self._line(COLUMNS, widths, shown)[:width], Style(bold=True))
        for index in range(self._top, min(len(self.rows), self._top + visible)):
            row = self.rows[index]
            style = Style(color=None if row.healthy else "yellow",
                          reverse=index == self.cursor and self.has_focus,
                          bold=index == self.cursor)
            text.append("\n")
            text.append(self._line(cells(row), widths, shown)[:width].ljust(width), style)
        return text

    def _line(self, values: tuple[str, ...], widths: list[int], shown: list[int]) -> str:
        parts = [values[i].rjust(widths[i]) if COLUMNS[i] in RIGHT else values[i].ljust(widths[i])
                 for i in shown]
        return " " + (" " * GAP).join(parts).rstrip()
