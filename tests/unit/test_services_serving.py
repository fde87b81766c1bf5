"""The connection budget: below the fd limit, bounded when the fd limit is not."""

from __future__ import annotations

from ollamamax_stack.services.common.serving import default_budget


def test_the_default_budget_leaves_fds_for_upstream_sockets_and_files() -> None:
    assert default_budget(1024, None, None).limit == 384  # (1024 - 256) / 2
    assert default_budget(1 << 30, None, None).limit == 65536
    assert default_budget(100, None, None).limit == 16
    configured = default_budget(20000, 20, 10)
    assert (configured.limit, configured.websocket_limit) == (20, 10)
