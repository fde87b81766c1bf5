"""What `top`'s keys do to the stack: the CLI's own commands, run as child processes.

Like circus's client half of a command: the view never reaches into the runner; `r` is
`ollamamax restart NAME` (held services roll, `supervise/rolling.py`), `s` is `stop`/`start`,
`R` is `reload`, each under the same lock as from any other terminal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from ollamamax_stack.registry.model import Registry


def argv(registry: Registry, *command: str) -> list[str]:
    """`ollamamax COMMAND` aimed at the same stack as the view (config, offset, run dir)."""
    return [sys.executable, "-m", "ollamamax_stack", "--config", str(registry.source),
            "--offset", str(registry.offset), "--run-dir", str(registry.run_dir),
            "--profile", registry.profile, *command]


async def run(registry: Registry, *command: str) -> AsyncIterator[str]:
    """Run the command; yield each line it prints, then `exit N`."""
    child = await asyncio.create_subprocess_exec(
        *argv(registry, *command), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"NO_COLOR": "1", **_environ()})
    assert child.stdout is not None
    async for raw in child.stdout:
        yield raw.decode(errors="replace").rstrip()
    yield f"exit {await child.wait()}"


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
