"""The `ollamamax` command line: parse, call, print. Logic lives in the packages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ollamamax_stack import __version__
from ollamamax_stack.commands import keys, launch, models, ports, serve, stack
from ollamamax_stack.commands import render as render_command
from ollamamax_stack.commands import systemd as systemd_command
from ollamamax_stack.commands.common import GlobalOptions
from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.markers import RUN_DIR_ENV

app = typer.Typer(
    name="ollamamax",
    help="Run the OllamaMax stack from one port registry, and keep its ports honest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", envvar="OLLAMAMAX_CONFIG",
        help="The registry (default: config/ports.toml found walking up).")] = None,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir", envvar=RUN_DIR_ENV,
        help="Where the running stack keeps its state (default: the registry's run_dir).")] = None,
    offset: Annotated[int, typer.Option(
        "--offset", envvar="OLLAMAMAX_OFFSET",
        help="Shift every port of the stack by N.")] = 0,
    profile: Annotated[str | None, typer.Option(
        "--profile", "-p", envvar="OLLAMAMAX_PROFILE",
        help="Profile to run (default: default; `full` adds postgres, redis, ...).")] = None,
) -> None:
    """Global options apply to every command."""
    ctx.obj = GlobalOptions(config=config, run_dir=run_dir, offset=offset, profile=profile)


def version() -> None:
    """Print the version."""
    typer.echo(f"ollamamax-stack {__version__}")


# In the order `--help` lists them: the stack first, as in the README ("The command line").
stack.register(app)
ports.register(app)
models.register(app)
render_command.register(app)
systemd_command.register(app)
keys.register(app)
serve.register(app)
launch.register(app)
app.command()(version)


def main() -> None:
    """Entry point: run the app; our own errors become one line on stderr and an exit code."""
    try:
        app()
    except OllamamaxError as exc:
        sys.stderr.write(f"ollamamax: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
