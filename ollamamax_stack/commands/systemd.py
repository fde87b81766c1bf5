"""`ollamamax systemd install|uninstall [--user]`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import UsageError
from ollamamax_stack.render.base import write_files
from ollamamax_stack.render.targets import RenderOptions, render

systemd_app = typer.Typer(help="Install the rendered systemd units where systemd reads them.",
                          no_args_is_help=True)

SYSTEM_DIR = Path("/etc/systemd/system")


def register(app: typer.Typer) -> None:
    """Add the `systemd` group to the root app."""
    app.add_typer(systemd_app, name="systemd")


def unit_dir(user: bool) -> Path:
    """Where systemd reads units: /etc/systemd/system, or ~/.config/systemd/user with --user."""
    if not user:
        return Path(os.environ.get("OLLAMAMAX_SYSTEMD_DIR", SYSTEM_DIR))
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(os.environ.get("OLLAMAMAX_SYSTEMD_DIR", Path(config) / "systemd" / "user"))


UserOption = Annotated[bool, typer.Option("--user", help="Per-user units (systemctl --user).")]


@systemd_app.command("install")
def install(
    ctx: typer.Context,
    user: UserOption = False,
    socket_activation: Annotated[bool, typer.Option(
        "--socket-activation", help="Also install .socket units that hold the ports.")] = False,
) -> None:
    """Write the units and print the systemctl commands that start the stack."""
    registry = common.registry(ctx)
    files = render("systemd", registry, RenderOptions(socket_activation=socket_activation,
                                                      user_mode=user))
    directory = unit_dir(user)
    for path in write_files(files, directory):
        typer.echo(f"wrote {path}")
    systemctl = "systemctl --user" if user else "systemctl"
    target = next(name for name in files if name.endswith(".target"))
    typer.echo("next:")
    typer.echo(f"  {systemctl} daemon-reload")
    typer.echo(f"  {systemctl} enable --now {target}")


@systemd_app.command("uninstall")
def uninstall(ctx: typer.Context, user: UserOption = False) -> None:
    """Remove the stack's units and print the systemctl commands to run first and after."""
    registry = common.registry(ctx)
    directory = unit_dir(user)
    prefix = registry.stack.name
    ours = [*directory.glob(f"{prefix}.target"), *directory.glob(f"{prefix}-*.service"),
            *directory.glob(f"{prefix}-*.socket")]
    # `systemctl enable` links units into *.wants/; leave no dangling link behind.
    links = [p for p in directory.glob(f"*.wants/{prefix}*") if p.is_symlink()]
    units = sorted({*ours, *links})
    if not units:
        raise UsageError(f"no {prefix} units in {directory}; nothing to uninstall")
    systemctl = "systemctl --user" if user else "systemctl"
    target = f"{prefix}.target"
    for path in units:
        try:
            path.unlink()
        except OSError as exc:
            raise UsageError(f"cannot remove {path}: {exc.strerror or exc}") from None
        typer.echo(f"removed {path}")
    typer.echo("next:")
    typer.echo(f"  {systemctl} stop {target}")
    typer.echo(f"  {systemctl} daemon-reload")
