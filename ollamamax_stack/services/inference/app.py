"""The inference service: the Ollama API and the cluster API on `api`, the status page on `web`.

Readiness: not ready until the health checker has looked at every node once; then ready.
Degraded (still ready, HTTP 200) when a node is down or no node is configured; with no
healthy node at all, model requests answer 503 but the service itself is up, because on a
laptop Ollama is optional.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.app import base_app
from ollamamax_stack.services.common.auth import Authenticator
from ollamamax_stack.services.common.health import Readiness, ServiceState, nodes_down
from ollamamax_stack.services.common.keys import METRICS
from ollamamax_stack.services.common.rate_limits import rate_limit_middleware
from ollamamax_stack.services.common.redis_limits import rate_limiter
from ollamamax_stack.services.common.runner import Listening
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.inference import (
    cluster_api,
    models_api,
    ollama_api,
    routes_api,
    status_page,
)
from ollamamax_stack.services.inference.admission import node_policy
from ollamamax_stack.services.inference.ensure import ModelEnsurer, wanted_models
from ollamamax_stack.services.inference.keys import POOL, PROXY
from ollamamax_stack.services.inference.metrics import PoolCollector, QueueCollector
from ollamamax_stack.services.inference.pool import NodePool, PoolError
from ollamamax_stack.services.inference.proxy import Proxy
from ollamamax_stack.services.routing.policy import scheduling_policy

PORT_NAMES = ["api", "web"]


def node_urls(settings: ServiceSettings) -> list[str]:
    """`$OLLAMA_NODES` (comma-separated, each `url[;slots=N;weight=W;tier=T]`), else the
    registry's Ollama URL."""
    raw = settings.get("OLLAMA_NODES") or settings.url_of("ollama") or ""
    return [u.strip() for u in raw.split(",") if u.strip()]


def pool_readiness(pool: NodePool, ensurer: ModelEnsurer | None = None) -> Readiness:
    """Ready once every node was checked; degraded, with reasons, when any is down (or a
    registry model is still pulling, or failed to, onto a node)."""
    if not pool.running:
        return Readiness(ready=False, reasons=["checking the Ollama nodes for the first time"])
    down = [n for n in pool.nodes.values() if not n.healthy]
    reasons = [f"node {n.id} ({n.url}) is down: {n.last_error or 'not checked yet'}"
               for n in down]
    summary = [nodes_down(len(pool.nodes), len(down))] if down else []
    if not pool.nodes:
        reasons.append("no Ollama node configured (set OLLAMA_NODES or POST /api/v1/nodes)")
        summary = reasons[-1:]
    elif not pool.healthy():
        reasons.insert(0, "no healthy Ollama node: model requests answer 503")
        summary.insert(0, reasons[0])
    if ensurer is not None and ensurer.reasons():
        reasons += ensurer.reasons()
        summary.append(ensurer.summary())
    return Readiness(ready=True, degraded=bool(reasons), reasons=reasons, summary=summary)


def create_apps(settings: ServiceSettings, authenticator: Authenticator) -> list[Listening]:
    """The api app and the web (status page) app, sharing one pool."""
    scheduling = scheduling_policy(settings)
    try:
        pool = NodePool(node_urls(settings),
                        interval=settings.number("OLLAMAMAX_HEALTH_INTERVAL", 2.0),
                        timeout=settings.number("OLLAMAMAX_HEALTH_TIMEOUT", 2.0),
                        down_after=int(settings.number("OLLAMAMAX_DOWN_AFTER", 2)),
                        policy=node_policy(settings), cooldown=scheduling.cooldown)
    except PoolError as exc:
        raise UsageError(f"OLLAMA_NODES: {exc}") from None
    proxy = Proxy(pool,
                  connect_timeout=settings.number("OLLAMAMAX_CONNECT_TIMEOUT", 3.0),
                  read_timeout=settings.number("OLLAMAMAX_READ_TIMEOUT", 300.0),
                  policy=scheduling)

    ensurer = ModelEnsurer(pool, wanted_models(settings),
                           read_timeout=settings.number("OLLAMAMAX_READ_TIMEOUT", 300.0))

    async def readiness() -> Readiness:
        return pool_readiness(pool, ensurer)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await proxy.start()
        await pool.start()
        ensurer.start()
        yield
        await ensurer.stop()
        await pool.stop()
        await proxy.stop()

    state = ServiceState()
    api = base_app(settings, authenticator=authenticator, readiness=readiness,
                   protected=("/api",), state=state)
    # Keys created with `--rate-limit` are counted here too; the stack's own limit is the
    # gateway's (the front ends' calls for the routing table must never be limited).
    api.middlewares.append(rate_limit_middleware(rate_limiter(authenticator, 0), ("/api",)))
    api[POOL] = pool
    api[PROXY] = proxy
    api[METRICS].registry.register(PoolCollector(pool))
    api[METRICS].registry.register(QueueCollector(proxy.dispatcher.queue))
    api.cleanup_ctx.append(lifecycle)
    api.on_shutdown.append(lambda app: pool.release_waiters())
    ollama_api.add_routes(api)
    models_api.add_routes(api)
    cluster_api.add_routes(api)
    routes_api.add_routes(api)

    # The status data names node URLs: with API keys set it needs one (the page passes ?token=).
    web_app = base_app(settings, authenticator=authenticator, readiness=readiness, state=state,
                       protected=(status_page.DATA_PATH,),
                       token_query_paths=(status_page.DATA_PATH,))
    web_app[POOL] = pool
    status_page.add_routes(web_app)
    return [Listening("api", api), Listening("web", web_app)]
