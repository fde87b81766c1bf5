"""The environment variables that mark a process as one of a stack's: `down` and the sweep
find the stack's processes by them, and the services read their run directory from them."""

from __future__ import annotations

RUN_DIR_ENV = "OLLAMAMAX_RUN_DIR"  # the stack's run directory
SERVICE_ENV = "OLLAMAMAX_SERVICE"  # the registry name of the service the process runs
