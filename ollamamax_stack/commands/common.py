"""What every command shares: the global options and loading the registry from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from ollamamax_stack.registry.model import Registry


@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command: `ollamamax [--config F] [--offset N] ... COMMAND`."""

    config: Path | None = None
    run_dir: Path | None = None
    offset: int = 0
    profile: str | None = None


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation."""
    root = ctx.find_root()
    obj = root.obj
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def load_registry_for(opts: GlobalOptions) -> Registry:
    """Load the registry global options point at (errors surface as RegistryError)."""
    from ollamamax_stack.registry.loader import load_registry

    return load_registry(opts.config, offset=opts.offset, profile=opts.profile,
                         run_dir=opts.run_dir)


def registry(ctx: typer.Context) -> Registry:
    """Load the registry the global options point at (errors surface as RegistryError)."""
    return load_registry_for(options(ctx))
