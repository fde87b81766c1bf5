"""The project's own error types: each carries a message a user can act on."""

from __future__ import annotations

# sysexits.h EX_UNAVAILABLE: a program the service needs is not installed here. The supervisor
# takes this exit as "optional dependency unavailable" (degraded), not as a crash to restart.
EXIT_UNAVAILABLE = 69


class OllamamaxError(Exception):
    """An error the CLI prints as one line on stderr before exiting with `exit_code`."""

    exit_code = 1


class UsageError(OllamamaxError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class RegistryError(OllamamaxError):
    """The registry cannot be found, read or validated (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.detail = message
        where = file or ""
        if file and line:
            where = f"{file}:{line}"
        prefix = ": ".join(p for p in (where, key) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
