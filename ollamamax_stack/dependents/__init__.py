"""The `full` profile's dependents run from Debian packages: redis, PostgreSQL, Prometheus."""

from __future__ import annotations

from ollamamax_stack.errors import OllamamaxError

# sysexits.h EX_UNAVAILABLE: the program is not installed. The supervisor reads this exit code
# as "optional dependency unavailable" (degraded), not as a crash to restart.
EXIT_UNAVAILABLE = 69


class UnavailableError(OllamamaxError):
    """A dependent cannot run here (its program is not installed): exit 69."""

    exit_code = EXIT_UNAVAILABLE


__all__ = ["EXIT_UNAVAILABLE", "UnavailableError"]
