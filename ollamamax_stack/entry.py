"""The `ollamamax` console script: a plain `ports check` or `logs` runs without loading typer."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run `ports check` or `logs` straight from argv when plain; hand the rest to typer."""
    from ollamamax_stack.fastpath import parse, parse_logs

    parsed = parse(sys.argv[1:], os.environ)
    logs = parse_logs(sys.argv[1:], os.environ) if parsed is None else None
    if parsed is None and logs is None:
        from ollamamax_stack.cli import main as cli_main

        cli_main()
        return
    from ollamamax_stack.commands.check_run import run_check
    from ollamamax_stack.errors import OllamamaxError

    # Scanning every installed distribution for pydantic plugins costs more than the check's
    # own model needs; this short-lived process uses none. A user's explicit setting wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    try:
        if logs is not None:
            from ollamamax_stack.commands.common import load_registry_for
            from ollamamax_stack.commands.logs_run import run_logs

            code = run_logs(load_registry_for(logs[0]), logs[1])
        else:
            assert parsed is not None
            code = run_check(*parsed)
    except OllamamaxError as exc:
        sys.stderr.write(f"ollamamax: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)
