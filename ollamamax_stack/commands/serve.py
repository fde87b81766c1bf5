"""`ollamamax serve SERVICE` and `ollamamax chat [--model M] [PROMPT]`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import RegistryError, UsageError

if TYPE_CHECKING:
    from ollamamax_stack.registry.model import Registry


def register(app: typer.Typer) -> None:
    """Add `serve` and `chat` to the root app."""
    app.command("serve")(serve)
    app.command("chat")(chat)


def _registry_or_none(ctx: typer.Context) -> Registry | None:
    # Under systemd or a bare Procfile runner there may be no registry: PORT is then enough.
    try:
        return common.registry(ctx)
    except RegistryError:
        if "PORT" in os.environ and not common.options(ctx).config:
            return None
        raise


def serve(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="gateway, hub, fallback or inference.")],
) -> None:
    """Run one of the stack's own services in the foreground."""
    from ollamamax_stack.services.launch import serve as serve_service

    serve_service(service, _registry_or_none(ctx))


def chat(
    ctx: typer.Context,
    prompt: Annotated[str | None, typer.Argument(help="What to ask (default: read stdin).")]
    = None,
    model: Annotated[str | None, typer.Option("--model", "-m",
                                              help="Model (default: the first one served).")]
    = None,
    token: Annotated[str | None, typer.Option("--token", hidden=True,
                                              help="Refused: use $OLLAMAMAX_TOKEN.")] = None,
) -> None:
    """Chat from the terminal over WebSocket: gateway, then hub, then fallback.

    With auth on, the API key or JWT comes from $OLLAMAMAX_TOKEN, or is asked for on the
    terminal (not echoed).
    """
    import getpass
    import sys

    from ollamamax_stack.services.hub.client import TOKEN_ENV, chat_endpoints, run_chat, token_from

    if token is not None:
        # Refused, not just warned about: by now the key is in `ps` for every local user.
        raise UsageError(f"--token puts the key on the command line, which every local user "
                         f"can read; set {TOKEN_ENV} instead, or leave it out to be asked")
    text = prompt if prompt is not None else sys.stdin.read().strip()
    if not text:
        raise typer.BadParameter("give a PROMPT or pipe one on stdin")
    endpoints = chat_endpoints(_registry_or_none(ctx), os.environ)
    ask = getpass.getpass if sys.stdin.isatty() else None
    raise typer.Exit(run_chat(endpoints, text, model=model, token=token_from(os.environ),
                              ask=ask))
