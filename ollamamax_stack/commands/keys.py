"""`ollamamax keys create|list|revoke`: the stack's API keys in its store (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Annotated

import typer

from ollamamax_stack.commands import common

if TYPE_CHECKING:
    from ollamamax_stack.keystore.model import StoredKey
    from ollamamax_stack.keystore.store import KeyStore

keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed; the stack follows "
                            "changes within a second).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `keys` group to the root app."""
    app.add_typer(keys_app, name="keys")


def _store(ctx: typer.Context) -> KeyStore:
    """The store the stack's services use: the running stack's profile unless one is given."""
    from dataclasses import replace

    from ollamamax_stack.keystore.locate import locate, open_store
    from ollamamax_stack.registry.environ import stack_urls
    from ollamamax_stack.supervise.paths import RunPaths
    from ollamamax_stack.supervise.state import load

    opts = common.options(ctx)
    registry = common.load_registry_for(opts)
    if opts.profile is None:
        running = load(RunPaths(registry.run_dir))
        if running.phase != "down" and running.profile and running.profile != registry.profile:
            registry = common.load_registry_for(replace(opts, profile=running.profile))
    # The services' environment is the registry's overlaid by the process's: the same here.
    return open_store(locate({**stack_urls(registry), **os.environ}, registry.run_dir))


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _limit(key: StoredKey) -> str:
    return "-" if key.rate_limit is None else f"{key.rate_limit}/min"


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for logs, limits and `keys revoke`.")],
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Refuse the key after this long: 45s, 90m, 12h, 30d, 2w.")] = None,
    rate_limit: Annotated[int | None, typer.Option(
        "--rate-limit", help="Requests per minute for this key (instead of the stack's).")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="The admin role (control plane).")
                     ] = False,
) -> None:
    """Create a key; it is printed once, alone on the last line."""
    from ollamamax_stack.keystore.model import parse_duration
    from ollamamax_stack.services.common.apikeys import ADMIN, USER

    expires_in = parse_duration(expires) if expires is not None else None
    store = _store(ctx)
    try:
        key, record = store.create(name, ADMIN if admin else USER, expires_in, rate_limit)
        where = store.where
    finally:
        store.close()
    typer.echo(f"created {record.role} key {record.name!r} in {where} "
               f"(expires {_when(record.expires_at)} UTC, rate limit {_limit(record)})")
    typer.echo("the key is shown once and stored only as its sha256; keep it now:")
    typer.echo(key)


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the keys: name, role, created, last used, expiry, state (never the key)."""
    store = _store(ctx)
    try:
        keys, where = store.keys(), store.where
    finally:
        store.close()
    now = time.time()
    if as_json:
        typer.echo(json.dumps([{"name": k.name, "role": k.role, "created": k.created,
                                "last_used": k.last_used, "expires_at": k.expires_at,
                                "rate_limit": k.rate_limit, "revoked_at": k.revoked_at,
                                "state": k.state(now)} for k in keys]))
        return
    if not keys:
        typer.echo(f"no keys in {where}: create one with `ollamamax keys create NAME`")
        return
    rows = [("NAME", "ROLE", "CREATED (UTC)", "LAST USED", "EXPIRES", "STATE", "LIMIT")]
    rows += [(k.name, k.role, _when(k.created), _when(k.last_used), _when(k.expires_at),
              k.state(now), _limit(k)) for k in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name (see `keys list`).")],
) -> None:
    """Revoke a key: every service of the stack refuses it within a second."""
    store = _store(ctx)
    try:
        record = store.revoke(name)
        where = store.where
    finally:
        store.close()
    typer.echo(f"revoked key {record.name!r} in {where} at {_when(record.revoked_at)} UTC")
