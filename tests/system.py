"""Debian programs some tests run for real; `make test` installs them (scripts/system-deps)."""

from __future__ import annotations

import os

import pytest


def missing_program(program: str, package: str) -> None:
    """Skip when run by hand without the program; fail under CI, where it must be installed."""
    message = (f"{program} is not installed (Debian package {package}; "
               "`make test` installs it via scripts/system-deps)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
