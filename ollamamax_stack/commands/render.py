"""`ollamamax render TARGET [--out DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import UsageError
from ollamamax_stack.render.base import as_stdout, write_files
from ollamamax_stack.render.passwords import ensure_password_files
from ollamamax_stack.render.targets import TARGETS, RenderOptions, passwords_to_write, render


def register(app: typer.Typer) -> None:
    """Add the `render` command to the root app."""
    app.command("render", help=f"Render the registry as files for: {', '.join(TARGETS)}.")(
        render_command)


def render_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help=f"One of: {', '.join(TARGETS)}.",
                                          show_default=False)],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the files into DIR (default: print to stdout).")] = None,
    namespace: Annotated[str | None, typer.Option(
        help="k8s: the namespace (default: the stack's name).")] = None,
    image: Annotated[str | None, typer.Option(
        help="k8s: the image running the stack's own services.")] = None,
    replicas: Annotated[int, typer.Option(
        help="k8s: replicas of each of the stack's own services.")] = 1,
    socket_activation: Annotated[bool, typer.Option(
        "--socket-activation", help="systemd: add .socket units that hold the ports.")] = False,
    generate_secrets: Annotated[bool, typer.Option(
        "--generate-secrets", help="k8s: write random secrets/*.password (kept if present) "
                                   "and a secretGenerator for them; needs --out.")] = False,
) -> None:
    """Render the registry for one target: to stdout, or into --out DIR."""
    registry = common.registry(ctx)
    credentials = None
    if target == "prometheus":
        import os

        from ollamamax_stack.dependents.scrape_credentials import write_scrape_credentials

        credentials = write_scrape_credentials(os.environ, registry.run_dir)
    options = RenderOptions(namespace=namespace, image=image, replicas=replicas,
                            socket_activation=socket_activation, scrape_credentials=credentials,
                            generate_secrets=generate_secrets)
    files = render(target, registry, options)
    if out is None:
        if generate_secrets:
            raise UsageError("--generate-secrets writes secrets/*.password files: "
                             "give --out DIR")
        typer.echo(as_stdout(files), nl=False)
        return
    # The passwords first: a file others can read stops the render before anything is written.
    for path in [*ensure_password_files(passwords_to_write(target, registry, options), out),
                 *write_files(files, out)]:
        typer.echo(str(path))
