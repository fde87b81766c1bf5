"""`ollamamax top`: the running stack as a live table, the selected service's log below it.

The stack is looked at once a second in a thread (supervisord over XML-RPC, psutil for CPU and
memory), so the UI thread only draws; events (events.jsonl) wake a look at once. Keys act
through the CLI's own commands (`view/actions.py`); `q` leaves the stack as it is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, Log, Static

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.supervise import events
from ollamamax_stack.supervise.machine import Event, Status
from ollamamax_stack.supervise.paths import RunPaths
from ollamamax_stack.view import actions
from ollamamax_stack.view.grid import StackGrid
from ollamamax_stack.view.help import HelpScreen
from ollamamax_stack.view.logpane import LogSource
from ollamamax_stack.view.rows import Row
from ollamamax_stack.view.snapshot import Looker, Snapshot

LOG_PERIOD = 0.5
BACKLOG_SECONDS = 300  # the events of the last minutes are shown when the view opens


class TopApp(App[None]):
    """The live view of one running stack."""

    TITLE = "ollamamax top"
    ENABLE_COMMAND_PALETTE = False  # every action is a key of the footer; no second way in
    CSS = """
    #title { height: 1; background: $primary-background; }
    #activity { height: 5; border-top: solid $primary; }
    #logbar { height: 1; background: $primary-background; }
    #log { height: 1fr; }
    #filter { display: none; }
    #filter.open { display: block; }
    .fullscreen #table, .fullscreen #activity { display: none; }
    """
    BINDINGS = [
        Binding("r", "restart", "restart"),
        Binding("s", "stop_start", "stop/start"),
        Binding("l", "full_log", "log"),
        Binding("slash", "filter", "filter"),
        Binding("R", "reload", "reload"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_view", "quit"),
    ]

    def __init__(self, registry: Registry, load: Callable[[], Registry],
                 refresh_every: float = 1.0) -> None:
        super().__init__()
        self.registry = registry
        self._load = load
        self._every = refresh_every
        self._looker = Looker(registry)
        self._snapshot: Snapshot | None = None
        self._rows: dict[str, Row] = {}
        self._selected: str | None = None
        self._log_source: LogSource | None = None
        self._filter = ""
        self._looking = False
        self._again = False
        self._opened = time.time()
        self._quitting = threading.Event()
        self._drawn: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield StackGrid(id="table")
        activity = Log(id="activity", max_lines=200)
        activity.can_focus = False  # Tab never strands the arrows in a pane they cannot steer
        yield activity
        yield Static(id="logbar")
        yield Input(placeholder="filter the log (regular expression), Enter applies, "
                    "Esc cancels", id="filter")
        yield Log(id="log", max_lines=5000)
        yield Footer()

    # -- looking at the stack ---------------------------------------------------------------

    async def on_mount(self) -> None:
        table = self.query_one("#table", StackGrid)
        await self._look()
        self.set_interval(self._every, self._look)
        self.set_interval(LOG_PERIOD, self._follow_log)
        threading.Thread(target=self._follow_events, name="top-events", daemon=True).start()
        table.focus()

    async def _look(self, full: bool = False) -> None:
        if self._looking:  # a slow look (a busy host) is not stacked behind another
            self._again = self._again or full
            return
        self._looking = True
        try:
            seen = await asyncio.to_thread(self._looker.look, full)
        finally:
            self._looking = False
        self._show(seen)
        if self._again:  # an event came during the look: what it changed is not in it yet
            self._again = False
            await self._look(full=True)

    def _show(self, seen: Snapshot) -> None:
        self._snapshot = seen
        self._update("#title", Text.assemble(
            (f" {self.registry.stack.name}: {seen.stack}", "bold"), f"   {seen.supervision}",
            "   ? help"))
        grid = self.query_one("#table", StackGrid)
        grid.show(seen.rows)
        self._rows = {row.row_id: row for row in seen.rows}
        if self._selected not in self._rows and grid.selected is not None:
            self._select(grid.selected.row_id)
        self._show_logbar()

    def on_stack_grid_highlighted(self, message: StackGrid.Highlighted) -> None:
        self._select(message.row.row_id)

    def _select(self, row_id: str) -> None:
        before = self._rows.get(self._selected or "")
        self._selected = row_id
        row = self._rows.get(row_id)
        if row is not None and (before is None or before.service != row.service
                                or self._log_source is None):
            self._open_log(row.service)
        self._show_logbar()

    def _selected_row(self) -> Row | None:
        return self._rows.get(self._selected or "")

    # -- the log ----------------------------------------------------------------------------

    def _open_log(self, service: str) -> None:
        self._log_source = LogSource(RunPaths(self.registry.run_dir).log(service), self._filter)
        pane = self.query_one("#log", Log)
        pane.clear()
        pane.write_lines(self._log_source.backlog())

    def _follow_log(self) -> None:
        if self._log_source is not None:
            lines = self._log_source.poll()
            if lines:
                self.query_one("#log", Log).write_lines(lines)

    def _show_logbar(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        said = f" {row.service} log"
        if self._filter:
            said += f"   filter: /{self._filter}/"
        said += f"   {row.key}: {row.label}"
        self._update("#logbar", Text(said, style="bold"))

    def _update(self, selector: str, text: Text) -> None:
        """Redraw a line only when its text changed (a redraw is most of an idle view's CPU)."""
        if self._drawn.get(selector) != text.markup:
            self._drawn[selector] = text.markup
            self.query_one(selector, Static).update(text)

    # -- events -----------------------------------------------------------------------------

    def _follow_events(self) -> None:
        for event in events.follow(self.registry.run_dir, self._opened - BACKLOG_SECONDS,
                                   period=0.2, done=self._quitting.is_set):
            if self._quitting.is_set():
                return
            self.call_from_thread(self._on_event, event)

    def _on_event(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
        self._say(f"{stamp} {event.describe()}")
        if event.time >= self._opened:  # the backlog shown at start is already in the look
            self.run_worker(self._look(full=True), group="look")

    def _say(self, line: str) -> None:
        self.query_one("#activity", Log).write_line(line)

    # -- keys -------------------------------------------------------------------------------

    def _act(self, *command: str) -> None:
        self._say(f"$ ollamamax {' '.join(command)}")

        async def acting() -> None:
            async for line in actions.run(self.registry, *command):
                self._say(f"  {line}")
            await self._look(full=True)

        self.run_worker(acting(), group="act")

    def action_restart(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if self.registry.services.get(row.service) and self.registry.service(
                row.service).external:
            self._say(f"{row.service} is external: the stack does not restart it")
            return
        self._act("restart", row.key)

    def action_stop_start(self) -> None:
        row = self._selected_row()
        if row is None or self._snapshot is None:
            return
        service = self.registry.services.get(row.service)
        if service is None or service.external:
            self._say(f"{row.service} is external: the stack does not start or stop it")
            return
        own = self._rows[row.service]
        self._act("start" if own.state == Status.STOPPED else "stop", row.service)

    def action_reload(self) -> None:
        self._say("$ ollamamax reload")

        async def reloading() -> None:
            async for line in actions.run(self.registry, "reload"):
                self._say(f"  {line}")
            try:
                self.registry = await asyncio.to_thread(self._load)
            except Exception as exc:  # noqa: BLE001 — a broken registry is said, the view stays
                self._say(f"  the registry no longer loads: {exc}")
            self._looker = Looker(self.registry)
            await self._look(full=True)

        self.run_worker(reloading(), group="act")

    def action_full_log(self) -> None:
        self.screen.toggle_class("fullscreen")
        # Full screen, up/down scroll the log; back, they select rows again.
        shown = "#log" if self.screen.has_class("fullscreen") else "#table"
        self.query_one(shown).focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self._filter
        box.add_class("open")
        box.focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        self._filter = message.value
        self._close_filter()
        row = self._selected_row()
        if row is not None:
            self._open_log(row.service)
        self._show_logbar()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", None)
        box = self.query_one("#filter", Input)
        if key == "escape" and box.has_class("open"):
            self._close_filter()

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("open")
        self.query_one("#table", StackGrid).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_view(self) -> None:
        self._quitting.set()
        self.exit()
