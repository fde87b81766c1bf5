"""`top`'s help screen (`?`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """\
 ollamamax top: the running stack, live

 up/down      select a service or worker (left/right scroll the table)
 r            graceful restart of the selection (held services roll)
 s            stop the selected service, or start it when stopped
 l            the log full screen (again: back to the table)
 /            filter the log (a regular expression; empty: no filter)
 R            reload the registry (restarts only what changed)
 q            quit the view; the stack keeps running
 ?            this help (any key closes it)
"""


class HelpScreen(ModalScreen[None]):
    """The keys, over the view; any key closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 100%; border: round $accent;
                          background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "close")]

    def compose(self) -> ComposeResult:
        yield Static(KEYS)

    def on_key(self) -> None:
        self.dismiss()

    def action_close(self) -> None:
        self.dismiss()
