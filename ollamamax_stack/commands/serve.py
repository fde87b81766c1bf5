"""`ollamamax serve SERVICE` and `ollamamax chat [--model M] [PROMPT]`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import RegistryError

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
    token: Annotated[str | None, typer.Option("--token", envvar="OLLAMAMAX_API_KEY",
                                              help="API key or JWT, when auth is on.")] = None,
) -> None:
    """Chat from the terminal over WebSocket: gateway, then hub, then fallback."""
    import sys

    from ollamamax_stack.services.hub.client import chat_endpoints, run_chat

    text = prompt if prompt is not None else sys.stdin.read().strip()
    if not text:
        raise typer.BadParameter("give a PROMPT or pipe one on stdin")
    endpoints = chat_endpoints(_registry_or_none(ctx), os.environ)
    raise typer.Exit(run_chat(endpoints, text, model=model, token=token))
