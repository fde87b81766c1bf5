"""One Ollama node of the pool: its address, health, models and traffic."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ollamamax_stack.services.common.textsafe import has_control, printable
from ollamamax_stack.services.routing.breaker import Breaker

DEFAULT_SLOTS = 4  # requests a node takes at once from the whole stack (Ollama's NUM_PARALLEL)


def model_key(name: str) -> str:
    """Ollama's model name with the tag defaulted: `llama3` -> `llama3:latest`."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def node_id(url: str) -> str:
    """A short id that stays the same for the same URL across restarts."""
    return "n" + hashlib.sha1(url.encode()).hexdigest()[:7]


def normalise_url(url: str) -> str:
    """`http://host:port` without a trailing slash; ValueError when it is no plain HTTP URL.

    Strict, because the URL is printed in logs, `status` and errors: no control character or
    space, a scheme of http(s), a host, no user:password, no query or fragment.
    """
    url = url.strip().rstrip("/")
    if has_control(url) or " " in url:
        raise ValueError(f"{printable(url)!r} holds a control character or a space")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} is not a URL or has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r} must not carry a user or password")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r} must not carry a query or fragment")
    if port == 0:
        raise ValueError(f"{url!r} has an invalid port")
    return url


@dataclass
class Node:
    """An Ollama node as the pool sees it."""

    url: str
    id: str = ""
    healthy: bool = False
    checked: bool = False
    failures: int = 0
    version: str | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    last_change: float = field(default_factory=time.time)
    # Scheduling (issue 19): what the operator set, what /api/ps says, what this process saw.
    slots: int = DEFAULT_SLOTS
    weight: float = 1.0  # scales the node's share of requests among nodes of its tier
    tier: int = 0  # 0 first; a higher tier only while every lower one is full or down
    loaded: dict[str, float] = field(default_factory=dict)  # model -> seconds until expiry
    loading: dict[str, float] = field(default_factory=dict)  # model -> monotonic time sent cold
    breaker: Breaker = field(default_factory=Breaker)

    def __post_init__(self) -> None:
        self.id = self.id or node_id(self.url)

    @property
    def name(self) -> str:
        """`host:port`, for messages."""
        return urlsplit(self.url).netloc

    def has(self, model: str) -> bool:
        """Whether the node lists the model (tag defaulted to latest)."""
        return model_key(model) in self.models

    def warm(self, model: str) -> bool:
        """Whether the node has the model loaded (its /api/ps, or an answer seen since)."""
        return model_key(model) in self.loaded

    def snapshot(self) -> dict[str, Any]:
        """What /api/v1/nodes shows of this node."""
        return {"id": self.id, "url": self.url, "name": self.name, "healthy": self.healthy,
                "checked": self.checked, "failures": self.failures, "version": self.version,
                "models": sorted(self.models), "in_flight": self.in_flight,
                "requests": self.requests, "errors": self.errors, "last_error": self.last_error,
                "last_change": self.last_change, "slots": self.slots, "weight": self.weight,
                "tier": self.tier, "loaded": sorted(self.loaded),
                "breaker": self.breaker.state(time.monotonic()).value}
