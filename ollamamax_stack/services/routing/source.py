"""What routing needs of a set of nodes: the inference pool and a front end's table both fit."""

from __future__ import annotations

from typing import Protocol

from ollamamax_stack.services.routing.node import Node


class NodeSource(Protocol):
    """Nodes by id, who holds a model, and a place to report a node that failed a request."""

    nodes: dict[str, Node]
    failovers: int

    def healthy(self) -> list[Node]:
        """The nodes to route to now."""
        ...

    def holders(self, model: str) -> list[Node]:
        """The nodes (healthy or not) that list `model`."""
        ...

    def record_failure(self, node: Node, error: str, refused: bool = False) -> None:
        """A request could not reach the node (`refused`: the connect itself failed)."""
        ...

    def tripped(self, node: Node) -> None:
        """The node's breaker opened here: let the rest of the stack know."""
        ...
