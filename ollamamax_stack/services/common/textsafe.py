"""Text from requests made safe to print: control characters escaped, secrets and URLs hidden."""

from __future__ import annotations

import re

# C0 and C1 control characters and DEL: a newline forges log lines, ESC drives the terminal.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TOKEN_QUERY = re.compile(r"(?i)([?&](?:token|access_token|api_key)=)[^&#\s]*")
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


def redact_tokens(text: str) -> str:
    """`?token=secret` (and `access_token`, `api_key`) shown as `?token=***`."""
    return TOKEN_QUERY.sub(r"\1***", text)


def hide_addresses(text: str) -> str:
    """Internal addresses (URLs, IP:port) replaced by `<hidden>`, for anonymous callers."""
    return ADDRESS.sub("<hidden>", text)
