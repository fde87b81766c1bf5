"""`ollamamax models ls|pull|rm`: the models of the running stack's Ollama nodes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import RegistryError

if TYPE_CHECKING:
    from ollamamax_stack.services.inference.remote import Inference

app = typer.Typer(name="models", no_args_is_help=True,
                  help="Which node holds which model; pull onto or remove from the nodes.")

Nodes = Annotated[list[str] | None, typer.Option(
    "--node", "-n", help="Only this node (id, URL or host:port); repeat for more.")]


def register(root: typer.Typer) -> None:
    """Add `models` to the root app."""
    root.add_typer(app)


def _inference(ctx: typer.Context) -> Inference:
    from ollamamax_stack.services.hub.client import token_from
    from ollamamax_stack.services.inference.remote import Inference, inference_url

    try:
        registry = common.registry(ctx)
    except RegistryError:
        if not os.environ.get("OLLAMAMAX_INFERENCE_URL"):
            raise
        registry = None
    return Inference(inference_url(registry, os.environ), token_from(os.environ))


@app.command("ls")
def ls(ctx: typer.Context,
       as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Each model on each node, loaded or not; down nodes are named."""
    views = _inference(ctx).holdings()
    if as_json:
        typer.echo(json.dumps({"nodes": [asdict(v) for v in views]}))
        return
    rows = [(h.model, h.node, h.url, _loaded(h.loaded, h.expires_at))
            for v in views for h in v.models]
    rows.sort()
    widths = [max([len(r[i]) for r in rows] + [len(t)])
              for i, t in enumerate(("MODEL", "NODE", "URL", "LOADED"))]
    for row in [("MODEL", "NODE", "URL", "LOADED"), *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for view in views:
        if not view.healthy:
            typer.echo(f"node {view.id} ({view.url}) is down: "
                       f"{view.last_error or 'not checked yet'}")
        elif not view.models:
            typer.echo(f"node {view.id} ({view.url}) holds no model")
    if not views:
        typer.echo("no Ollama node in the pool (set OLLAMA_NODES or POST /api/v1/nodes)")


def _loaded(loaded: bool, expires_at: str | None) -> str:
    if not loaded:
        return "-"
    return f"loaded until {expires_at}" if expires_at else "loaded"


@app.command("pull")
def pull(ctx: typer.Context,
         model: Annotated[str, typer.Argument(help="The model, name[:tag].")],
         node: Nodes = None,
         replicas: Annotated[int | None, typer.Option(
             "--replicas", "-r", min=1,
             help="Pull only until this many nodes hold it.")] = None) -> None:
    """Pull MODEL onto every node (or --node ones, or until --replicas hold it)."""
    inference = _inference(ctx)
    urls = {n["id"]: n["url"] for n in inference.nodes()}
    shown: dict[str, str] = {}
    last: dict[str, Any] = {}
    for line in inference.pull(model, node, replicas):
        where = line.get("node")
        if where is None:
            last = line
            continue
        status = str(line.get("status", ""))
        if shown.get(where) == status:
            continue  # a download's progress: one line per layer, not per tick
        shown[where] = status
        size = f" ({_size(line['total'])})" if line.get("total") else ""
        detail = f": {line['error_detail']}" if line.get("error_detail") else ""
        typer.echo(f"{where} ({urls.get(where, '?')}) {status}{size}{detail}")
    if "error" in last:
        typer.echo(f"ollamamax: error: {last['error']}", err=True)
        raise typer.Exit(1)
    done = [n for n, status in shown.items() if status in ("success", "already present")]
    typer.echo(f"{model}: on {len(done)} node{'s' if len(done) != 1 else ''}")


def _size(total: Any) -> str:
    value = float(total)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1000
    return f"{value:.1f} GB"


@app.command("rm")
def rm(ctx: typer.Context,
       model: Annotated[str, typer.Argument(help="The model, name[:tag].")],
       node: Nodes = None) -> None:
    """Remove MODEL from every node (or the --node ones)."""
    inference = _inference(ctx)
    urls = {n["id"]: n["url"] for n in inference.nodes()}
    status, answer = inference.delete(model, node)
    words = {"deleted": "deleted", "absent": "not there", "failed": "failed"}
    for entry in answer.get("nodes", []):
        node_id = entry.get("node")
        detail = f": {entry['error']}" if entry.get("error") else ""
        typer.echo(f"{node_id} ({urls.get(node_id, '?')}) "
                   f"{words.get(entry.get('status'), entry.get('status'))}{detail}")
    if status != 200:
        typer.echo(f"ollamamax: error: {answer.get('error', f'HTTP {status}')}", err=True)
        raise typer.Exit(1)
