"""Line edits: put the registry's port where a drifting one stands, leaving the rest of the line."""

from __future__ import annotations

import re

_DOTENV = re.compile(r"^(?P<head>\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=)"
                     r"(?P<value>.*)$")
_JS_ENV = re.compile(r"process\.env(?:\.(?P<key>[A-Za-z_]\w*)|\[\s*['\"](?P<qkey>[A-Za-z_]\w*)"
                     r"['\"]\s*\])")


def _number(port: int) -> re.Pattern[str]:
    # The port as a whole number: not part of 130001, 1.13000 or a name like v13000.
    return re.compile(rf"(?<![\w.]){port}(?![\w]|\.\d)")


def replace_number(text: str, old: int, new: int) -> tuple[str, int]:
    """`text` with every whole-number `old` made `new`, and how many there were."""
    return _number(old).subn(str(new), text)


def _dotenv_comment(value: str) -> int:
    """Where a dotenv value's trailing comment starts (len(value) when there is none)."""
    stripped = value.lstrip()
    if stripped[:1] in ("'", '"'):
        start = len(value) - len(stripped)
        end = value.find(stripped[0], start + 1)
        if end < 0:
            return len(value)
        hash_at = value.find("#", end + 1)
        return hash_at if hash_at >= 0 else len(value)
    match = re.search(r"\s#", value)
    return match.start() if match else len(value)


def line_key(kind: str, line: str) -> str | None:
    """The env key a line assigns (`PORT=...`) or reads (`process.env.PORT || ...`), if any."""
    if kind == "dotenv":
        match = _DOTENV.match(line)
        return match.group("key") if match else None
    match = _JS_ENV.search(line)
    return (match.group("key") or match.group("qkey")) if match else None


def edit_at(line: str, column: int, old: int, new: int) -> str | None:
    """The line with the `old` starting at 1-based `column` made `new`; None if it is not there."""
    start = column - 1
    if start < 0 or not _number(old).match(line, start):
        return None
    return line[:start] + str(new) + line[start + len(str(old)):]


def edit_line(kind: str, line: str, old: int, new: int) -> str | None:
    """The line with `old` made `new` in its code (comments kept as they are); None if absent."""
    if kind == "dotenv":
        match = _DOTENV.match(line)
        if not match:
            return None
        value = match.group("value")
        cut = _dotenv_comment(value)
        code, count = replace_number(value[:cut], old, new)
        return match.group("head") + code + value[cut:] if count else None
    if kind == "nginx":
        code, hash_, comment = line.partition("#")
        code, count = replace_number(code, old, new)
        return code + hash_ + comment if count else None
    edited, count = replace_number(line, old, new)
    return edited if count else None
