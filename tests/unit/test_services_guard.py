"""Which Host names a service answers: none that a DNS-rebinding page could use."""

from __future__ import annotations

from pathlib import Path

from ollamamax_stack.services.common.guard import allowed_hosts, host_allowed, host_name
from ollamamax_stack.services.common.settings import ServiceSettings


def test_host_names_a_rebinding_page_cannot_use() -> None:
    local = ServiceSettings(name="gateway", host="127.0.0.1", ports={"main": 1}, env={},
                            run_dir=Path("."), hosts=["ollamamax.lan", "gateway"])
    names = allowed_hosts(local)
    for header in ("localhost:1", "127.0.0.1:1", "[::1]:1", "OllamaMax.LAN.", "gateway:1",
                   "127.0.0.2"):
        assert host_allowed(host_name(header), names, wildcard=False), header
    for header in ("evil.example:1", "localhost.evil.example", "10.0.0.5:1", "0.0.0.0:1",
                   "gateway.evil.example"):
        assert not host_allowed(host_name(header), names, wildcard=False), header
    # Bound to every interface (containers, Kubernetes): the pod's private IP is fine.
    assert host_allowed("10.244.1.5", names, wildcard=True)
    assert not host_allowed("evil.example", names, wildcard=True)
