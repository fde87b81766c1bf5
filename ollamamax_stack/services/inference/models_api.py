"""`POST /api/pull` and `DELETE /api/delete` on the pool: Ollama's calls, on many nodes at once.

`/api/pull {"model", "stream"?, "insecure"?, "nodes"?: [id | URL | host:port], "replicas"?: N}`
pulls onto every node (or those of `nodes`, or until `replicas` of them hold the model).
Streamed, each of a node's progress objects carries `"node": <id>`; a node's pull ends with
its `success` line, or `{"status": "failed", "node", "error_detail": <the node's reason>}`;
the last line is the cluster's: `{"status": "success"}`, or Ollama's `{"error": ...}` naming
every node that failed (so the official client raises it). `stream: false` gives one object
once all are done.
With API keys on, pulls and deletes need an admin key: they fill or empty every node's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from aiohttp import web

from ollamamax_stack.services.common.auth import require_admin
from ollamamax_stack.services.common.errors import ApiError, authenticated, json_body
from ollamamax_stack.services.common.keys import AUTH, SETTINGS
from ollamamax_stack.services.common.textsafe import hide_addresses
from ollamamax_stack.services.inference.keys import POOL
from ollamamax_stack.services.inference.pool import NodePool
from ollamamax_stack.services.inference.pulls import (
    Outcome,
    PullPlan,
    UnknownNode,
    answer_status,
    delete_on,
    failure_message,
    plan_pull,
    pull_all,
    resolve,
)
from ollamamax_stack.services.routing.node import Node, model_key

READ_TIMEOUT_ENV = "OLLAMAMAX_READ_TIMEOUT"


def _model(body: dict[str, Any]) -> str:
    model = body.get("model", body.get("name"))  # `name`: Ollama's older field
    if not isinstance(model, str) or not model.strip():
        raise ApiError(400, "field 'model' (a non-empty string) is required", param="model")
    return model.strip()


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"field {name!r} must be a boolean", param=name)
    return value


def _candidates(pool: NodePool, body: dict[str, Any]) -> list[Node]:
    refs = body.get("nodes")
    if refs is None:
        return list(pool.nodes.values())
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ApiError(400, "field 'nodes' must be a non-empty array of node ids, URLs or "
                            "host:port names", param="nodes")
    try:
        return resolve(pool.nodes, refs)
    except UnknownNode as exc:
        raise ApiError(400, str(exc), param="nodes") from None


def _replicas(body: dict[str, Any]) -> int | None:
    replicas = body.get("replicas")
    if replicas is None:
        return None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ApiError(400, "field 'replicas' must be a whole number >= 1", param="replicas")
    return replicas


def _shown(request: web.Request, text: str) -> str:
    """Node addresses for key holders, and for everyone while auth is off (when anyone may
    list the nodes anyway); hidden from anonymous callers of a stack with keys."""
    if authenticated(request) or not request.app[AUTH].enabled:
        return text
    return hide_addresses(text)


def _ndjson(line: dict[str, Any]) -> bytes:
    return orjson.dumps(line) + b"\n"


async def _refresh(pool: NodePool, nodes: list[Node]) -> None:
    """Look at the nodes again at once, so `/api/tags` and the routing table show the change."""
    await asyncio.gather(*(pool.check(n) for n in nodes))


async def pull(request: web.Request) -> web.StreamResponse:
    """`POST /api/pull`."""
    require_admin(request, "pulling a model onto the nodes")
    body = await json_body(request)
    model = _model(body)
    stream = _flag(body, "stream", True)
    insecure = _flag(body, "insecure", False)
    pool = request.app[POOL]
    plan = plan_pull(_candidates(pool, body), model, _replicas(body))
    if not plan.pull and not plan.present and plan.shortfall is None:
        raise ApiError(503, "no Ollama node in the pool to pull onto (set OLLAMA_NODES or "
                            "POST /api/v1/nodes)")
    read_timeout = request.app[SETTINGS].number(READ_TIMEOUT_ENV, 300.0)
    outcomes = [Outcome(n, "present") for n in plan.present]
    async with contextlib.aclosing(pull_all(pool.session, plan.pull, model, insecure=insecure,
                                            read_timeout=read_timeout)) as progress:
        if not stream:
            async for item in progress:
                if item.outcome is not None:
                    outcomes.append(item.outcome)
            await _refresh(pool, [o.node for o in outcomes if o.status == "success"])
            return _whole(request, model, plan, outcomes)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for node in plan.present:
            await response.write(_ndjson({"status": "already present", "node": node.id}))
        async for item in progress:
            if item.line is not None:
                await response.write(_ndjson({**item.line, "node": item.node.id}))
            elif item.outcome is not None:
                outcomes.append(item.outcome)
                await _relay_outcome(request, response, pool, item.outcome)
    message = failure_message("pull", model_key(model), outcomes, plan.shortfall)
    last = {"error": _shown(request, message)} if message else {"status": "success"}
    await response.write(_ndjson(last))
    await response.write_eof()
    return response


async def _relay_outcome(request: web.Request, response: web.StreamResponse, pool: NodePool,
                         outcome: Outcome) -> None:
    """A node's pull ended: a failed line naming it, or (done) look at its models again."""
    if outcome.failure is None:
        await pool.check(outcome.node)
        return
    await response.write(_ndjson({"status": "failed", "node": outcome.node.id,
                                  "error_detail": _shown(request, outcome.failure.reason)}))


def _whole(request: web.Request, model: str, plan: PullPlan,
           outcomes: list[Outcome]) -> web.Response:
    nodes = [_summary(request, o) for o in outcomes]
    message = failure_message("pull", model_key(model), outcomes, plan.shortfall)
    if message is None:
        return web.json_response({"status": "success", "nodes": nodes})
    return web.json_response({"error": _shown(request, message), "nodes": nodes},
                             status=answer_status(outcomes))


def _summary(request: web.Request, outcome: Outcome) -> dict[str, Any]:
    line = outcome.summary()
    if "error" in line:
        line["error"] = _shown(request, line["error"])
    return line


async def delete(request: web.Request) -> web.Response:
    """`DELETE /api/delete {"model", "nodes"?}`: off every node (or those named)."""
    require_admin(request, "deleting a model from the nodes")
    body = await json_body(request)
    model = _model(body)
    pool = request.app[POOL]
    targets = _candidates(pool, body)
    if not targets:
        raise ApiError(503, "no Ollama node in the pool (set OLLAMA_NODES or "
                            "POST /api/v1/nodes)")
    outcomes = list(await asyncio.gather(*(delete_on(pool.session, n, model) for n in targets)))
    await _refresh(pool, [o.node for o in outcomes if o.status == "deleted"])
    nodes = [_summary(request, o) for o in outcomes]
    message = failure_message("delete", model_key(model), outcomes)
    if message is not None:
        return web.json_response({"error": _shown(request, message), "nodes": nodes},
                                 status=answer_status(outcomes))
    if not any(o.status == "deleted" for o in outcomes):
        return web.json_response({"error": f"model '{model}' not found", "nodes": nodes},
                                 status=404)
    return web.json_response({"status": "success", "nodes": nodes})


def add_routes(app: web.Application) -> None:
    """Mount pull and delete."""
    app.router.add_post("/api/pull", pull)
    app.router.add_delete("/api/delete", delete)
