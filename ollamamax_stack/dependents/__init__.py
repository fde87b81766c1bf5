"""The `full` profile's dependents run from Debian packages: redis, PostgreSQL, Prometheus."""

from __future__ import annotations

from ollamamax_stack.errors import EXIT_UNAVAILABLE, OllamamaxError


class UnavailableError(OllamamaxError):
    """A dependent cannot run here (its program is not installed): exit 69."""

    exit_code = EXIT_UNAVAILABLE


__all__ = ["EXIT_UNAVAILABLE", "UnavailableError"]
