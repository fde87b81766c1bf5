"""Text from requests made safe to print: control characters escaped, secrets and URLs hidden."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote

# C0 and C1 control characters and DEL: a newline forges log lines, ESC drives the terminal.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SECRET_PARAMETERS = frozenset({"token", "access_token", "api_key"})
# URLs, `('10.0.0.5', 11434)` as socket errors print them, and bare `10.0.0.5:11434`.
ADDRESS = re.compile(r"\b(?:https?|wss?)://[^\s;,)'\"]+|\('[^']*', \d+\)"
                     r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9A-Fa-f:.]+\](?::\d+)?")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}")


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (`\\n`, `\\x1b`)."""
    return CONTROL.sub(_escape, text)


def has_control(text: str) -> bool:
    """Whether `text` holds a control character."""
    return CONTROL.search(text) is not None


def redact_tokens(path: str, query: str = "") -> str:
    """`path?query` with the values of `token`, `access_token` and `api_key` shown as `***`.

    Names are compared decoded and in any case, as a server reads them: `?%74oken=` is
    `?token=`. The query is shown re-encoded from its decoded pairs.
    """
    if not query:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = [f"{quote(name, safe='')}="
             f"{'***' if name.lower() in SECRET_PARAMETERS else quote(value, safe='')}"
             for name, value in pairs]
    return f"{path}?{'&'.join(shown)}"


def hide_addresses(text: str) -> str:
    """Internal addresses (URLs, IP:port) replaced by `<hidden>`, for anonymous callers."""
    return ADDRESS.sub("<hidden>", text)
