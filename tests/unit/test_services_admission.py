"""Which node URLs the pool admits: the limit, the networks and names of the allowlist."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.inference.admission import NodeRefused, node_policy
from ollamamax_stack.services.inference.pool import NodePool, PoolError


def settings(**env: str) -> ServiceSettings:
    return ServiceSettings(name="inference", host="127.0.0.1", ports={"api": 1}, env=env,
                           run_dir=Path("."))


def test_the_allowlist_admits_listed_networks_and_names_only() -> None:
    allowed = "10.0.0.0/8, fd00::/8,GPU-1.lan.,4gpu.lan"
    policy = node_policy(settings(OLLAMAMAX_NODE_NETWORKS=allowed))
    for url in ("http://10.2.3.4:11434", "http://[fd00::5]:11434", "http://gpu-1.lan:11434",
                "http://4gpu.lan"):
        policy.admit(url, 0)
    for url in ("http://127.0.0.1:11434", "http://gpu-2.lan", "http://10.evil.example"):
        with pytest.raises(NodeRefused, match="OLLAMAMAX_NODE_NETWORKS") as caught:
            policy.admit(url, 0)
        assert caught.value.status == 403
    node_policy(settings()).admit("http://anywhere.example", 0)  # no allowlist: any host


def test_the_limit_counts_every_node_including_the_configured_ones() -> None:
    policy = node_policy(settings(OLLAMAMAX_MAX_NODES="2"))
    with pytest.raises(PoolError, match=r"OLLAMAMAX_MAX_NODES=2") as caught:
        NodePool(["http://a:1", "http://b:1", "http://c:1"], policy=policy)
    assert caught.value.status == 409
    assert node_policy(settings()).max_nodes == 64


@pytest.mark.parametrize("env", [{"OLLAMAMAX_MAX_NODES": "0"}, {"OLLAMAMAX_MAX_NODES": "2.5"},
                                 {"OLLAMAMAX_NODE_NETWORKS": "10.0.0.0/33"},
                                 {"OLLAMAMAX_NODE_NETWORKS": "10.0.0.300"}])
def test_a_bad_policy_is_a_usage_error_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=next(iter(env))):
        node_policy(settings(**env))
