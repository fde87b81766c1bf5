"""The socket holder parks a service nobody serves: its port refuses, and a taker reopens it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from ollamamax_stack.handoff.holder import Held
from tests.portbase import free_port


def connects(port: int) -> bool:
    with socket.socket() as client:
        client.settimeout(1.0)
        return client.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def held() -> Iterator[tuple[Held, int]]:
    port = free_port()
    holding = Held()
    assert holding.sync({"gateway": {"main": ("127.0.0.1", port)}}) == []
    yield holding, port
    for sock in holding.sockets.values():
        sock.close()


def take(holding: Held, key: int) -> None:
    _, fds = holding.take("gateway", key, {"service": "gateway", "slot": "gateway.0a",
                                           "pid": 1})
    for fd in fds:
        os.close(fd)


def test_a_parked_port_refuses_and_a_take_binds_it_again(held: tuple[Held, int]) -> None:
    holding, port = held
    assert connects(port)  # held: a connection waits in the backlog
    assert holding.park("gateway", wait=0) is None
    assert not connects(port)
    assert holding.listing()["parked"] == ["gateway"]
    # A re-sync (reload) leaves it parked: nobody serves it yet.
    assert holding.sync(holding.want) == [] and not connects(port)
    take(holding, key=1)
    assert connects(port) and holding.listing()["parked"] == []


def test_a_port_with_a_process_on_it_is_not_parked(held: tuple[Held, int]) -> None:
    holding, port = held
    take(holding, key=1)
    problem = holding.park("gateway", wait=0)
    assert problem is not None and "pid 1" in problem
    assert connects(port)
    holding.forget(1)  # the process ended
    assert holding.park("gateway", wait=0) is None and not connects(port)


def test_a_service_the_holder_does_not_hold_is_named(held: tuple[Held, int]) -> None:
    holding, _ = held
    assert holding.park("redis", wait=0) == "redis is not a held service of this stack"
