"""Prometheus metrics: one CollectorRegistry per app, HTTP counters by route and status."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from ollamamax_stack.services.common.keys import METRICS

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class HttpMetrics:
    """The request metrics every service exports, plus room for its own in `registry`."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    worker: str = ""  # `gateway:0`: a restarted worker keeps its name and gets a new start time

    def __post_init__(self) -> None:
        # Prometheus counts restarts as changes of this value (`render alerts`, `render grafana`).
        Gauge("ollamamax_process_start_time_seconds", "When this process started (Unix time).",
              ["worker"], registry=self.registry).labels(self.worker).set(time.time())
        self.requests = Counter("http_requests_total", "HTTP requests answered.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds",
                                 "Time to answer (whole stream for streamed responses).",
                                 ["route", "method"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.in_flight = Gauge("http_requests_in_flight", "Requests being answered now.",
                               registry=self.registry)
        # `.labels()` hashes, validates and locks on every call: look each child up once.
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        counted = self._counted.get((route, method, status))
        if counted is None:
            counted = self._counted[route, method, status] = self.requests.labels(
                route, method, str(status))
        timed = self._timed.get((route, method))
        if timed is None:
            timed = self._timed[route, method] = self.latency.labels(route, method)
        counted.inc()
        timed.observe(seconds)


def route_of(request: web.Request) -> str:
    """The route's template (`/api/v1/nodes/{id}`), so labels stay few."""
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is not None and resource.canonical:
        return str(resource.canonical)
    return "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request by route, method and status."""
    metrics = request.app[METRICS]
    route = route_of(request)
    started = time.perf_counter()
    status = 500
    metrics.in_flight.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except ConnectionResetError:
        status = 499  # nginx's "client closed request"
        raise
    finally:
        metrics.in_flight.dec()
        metrics.record(route, request.method, status, time.perf_counter() - started)


async def metrics_handler(request: web.Request) -> web.Response:
    """`GET /metrics` in the Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
