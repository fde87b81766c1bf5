"""Which node URLs the pool admits: at most `OLLAMAMAX_MAX_NODES`, in `OLLAMAMAX_NODE_NETWORKS`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.settings import ServiceSettings

MAX_NODES_ENV = "OLLAMAMAX_MAX_NODES"
NETWORKS_ENV = "OLLAMAMAX_NODE_NETWORKS"
DEFAULT_MAX_NODES = 64
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NodeRefused(ValueError):
    """A node the policy does not admit; `status` is the HTTP answer (403 or 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class NodePolicy:
    """The limit on the pool's size and the optional allowlist of networks and host names."""

    max_nodes: int = DEFAULT_MAX_NODES
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @property
    def restricted(self) -> bool:
        """Whether an allowlist is set (else every host is admitted)."""
        return bool(self.networks or self.hosts)

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            # A name is admitted only by name: its address may change after it was checked.
            return host.lower().rstrip(".") in self.hosts
        return any(address in network for network in self.networks)

    def admit(self, url: str, count: int) -> None:
        """Raise NodeRefused unless a node at `url` may join a pool of `count` nodes."""
        host = urlsplit(url).hostname or ""
        if self.restricted and not self._allowed(host):
            raise NodeRefused(f"node host {host!r} is outside {NETWORKS_ENV} (the allowed "
                              "networks and host names)", 403)
        if count >= self.max_nodes:
            raise NodeRefused(f"the pool already holds {count} nodes, the limit "
                              f"({MAX_NODES_ENV}={self.max_nodes}); remove one first", 409)


def node_policy(settings: ServiceSettings) -> NodePolicy:
    """The policy from the environment; a bad network or limit is a usage error naming the key."""
    limit = settings.number(MAX_NODES_ENV, DEFAULT_MAX_NODES)
    if limit < 1 or limit != int(limit):
        raise UsageError(f"environment variable {MAX_NODES_ENV}={limit:g} must be a whole "
                         "number >= 1")
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in (e.strip() for e in settings.get(NETWORKS_ENV).split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            if "/" in entry or ":" in entry or not any(c.isalpha() for c in entry):
                raise UsageError(f"environment variable {NETWORKS_ENV}: {exc}") from None
            hosts.add(entry.lower().rstrip("."))  # a host name
    return NodePolicy(int(limit), tuple(networks), frozenset(hosts))
