"""The inference service seen from the command line: which node holds which model, pulls and
deletes, over its HTTP API (`/api/v1/nodes`, `/api/ps`, `/api/pull`, `/api/delete`).

Synchronous (urllib): a command does one thing and exits. Every failure is an
`InferenceUnreachable` or `InferenceRefused` whose message names the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.registry.model import Registry

URL_ENV = "OLLAMAMAX_INFERENCE_URL"
TIMEOUT = 10.0
PULL_TIMEOUT = 300.0  # between two progress lines of a pull


class InferenceUnreachable(OllamamaxError):
    """The inference service does not answer (exit 1)."""


class InferenceRefused(OllamamaxError):
    """The inference service answered with an error (exit 1)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def inference_url(registry: Registry | None, env: Mapping[str, str]) -> str:
    """`$OLLAMAMAX_INFERENCE_URL`, else the registry's inference api port."""
    url = env.get(URL_ENV)
    if not url and registry is not None and "inference" in registry.services:
        url = registry.url(registry.services["inference"], "api")
    if not url:
        raise InferenceUnreachable(f"no inference service known: set {URL_ENV} or give the "
                                   "registry with --config")
    return url.rstrip("/")


@dataclass(frozen=True)
class Holding:
    """One model on one node, and whether it is loaded now."""

    model: str
    node: str
    url: str
    loaded: bool = False
    expires_at: str | None = None
    size_vram: int | None = None


@dataclass(frozen=True)
class NodeView:
    """One node as `models ls` shows it."""

    id: str
    url: str
    healthy: bool
    last_error: str | None
    models: list[Holding] = field(default_factory=list)


@dataclass
class Inference:
    """A client of one inference service."""

    url: str
    token: str | None = None

    def _request(self, method: str, path: str, body: Any = None, timeout: float = TIMEOUT,
                 answers: tuple[int, ...] = ()) -> Any:
        """The open response; an HTTP error whose status is in `answers` is raised as it is."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in answers:
                raise
            raise InferenceRefused(f"{method} {self.url}{path}: HTTP {exc.code}: "
                                   f"{_error_text(exc.read())}{_hint(exc.code)}",
                                   exc.code) from None
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, OSError) and reason.strerror:
                reason = reason.strerror.lower()
            raise InferenceUnreachable(f"the inference service at {self.url} is not "
                                       f"answering ({reason}); is the stack up "
                                       "(`ollamamax up`)?") from None

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        with self._request(method, path, body) as response:
            return _parse(response.read(), self.url + path)

    def nodes(self) -> list[dict[str, Any]]:
        """`/api/v1/nodes`: each node with its health and model names."""
        return list(self._json("GET", "/api/v1/nodes").get("nodes", []))

    def holdings(self) -> list[NodeView]:
        """Every node with the models it lists and which of them are loaded."""
        loaded = {(m.get("node"), m.get("model") or m.get("name")): m
                  for m in self._json("GET", "/api/ps").get("models", [])
                  if isinstance(m, dict)}
        views = []
        for node in self.nodes():
            held = []
            for name in node.get("models", []):
                entry = loaded.get((node["id"], name))
                held.append(Holding(model=name, node=node["id"], url=node["url"],
                                    loaded=entry is not None,
                                    expires_at=(entry or {}).get("expires_at"),
                                    size_vram=(entry or {}).get("size_vram")))
            views.append(NodeView(id=node["id"], url=node["url"],
                                  healthy=bool(node.get("healthy")),
                                  last_error=node.get("last_error"), models=held))
        return views

    def pull(self, model: str, nodes: list[str] | None = None,
             replicas: int | None = None) -> Iterator[dict[str, Any]]:
        """The progress objects of a pull across the pool, as they come."""
        body: dict[str, Any] = {"model": model, "stream": True}
        if nodes:
            body["nodes"] = nodes
        if replicas is not None:
            body["replicas"] = replicas
        with self._request("POST", "/api/pull", body, timeout=PULL_TIMEOUT) as response:
            for raw in response:
                if raw.strip():
                    yield _parse(raw, self.url + "/api/pull")

    def delete(self, model: str, nodes: list[str] | None = None) -> tuple[int, dict[str, Any]]:
        """`/api/delete` across the pool: the status and the answer, each node's outcome in it
        (a 404, not on any node, and a 502, some node failed, are answers to show too)."""
        body: dict[str, Any] = {"model": model}
        if nodes:
            body["nodes"] = nodes
        try:
            with self._request("DELETE", "/api/delete", body, answers=(404, 500, 502)) as resp:
                return resp.status, _parse(resp.read(), self.url + "/api/delete")
        except urllib.error.HTTPError as exc:  # one of `answers`
            return exc.code, _parse(exc.read(), self.url + "/api/delete")


def _parse(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise InferenceRefused(f"{where} answered something that is not JSON", 502) from None


def _error_text(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace").strip() or "no reason given"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # an OpenAI-shaped error
        error = error.get("message")
    return str(error or body)


def _hint(status: int) -> str:
    if status == 401:
        return " (set OLLAMAMAX_TOKEN to an API key)"
    if status == 403:
        return " (set OLLAMAMAX_TOKEN to an admin key)"
    return ""
