"""`--profile full`: keys live in the stack's own PostgreSQL (scram, the generated password),
its schema made and versioned at start; every service follows a revocation or an expiry."""

from __future__ import annotations

import time
from pathlib import Path

import ollama
import pytest

from ollamamax_stack.registry import load_registry
from tests.integration.key_clients import (
    accepted_by,
    created_key,
    gateway_accepts,
    hub_accepts,
    inference_accepts,
    listed,
    revoked,
    seconds_until_refused,
)
from tests.integration.test_full_profile import (  # noqa: F401 (stack: the fixture)
    REGISTRY,
    psql,
    stack,
    up,
)

ENV_KEY = "sk-full-env"  # Prometheus scrapes with it (a stored key is not given to it)


def test_keys_in_the_full_profiles_postgres_are_followed_by_every_service(
        stack: tuple[list[str], Path, int],  # noqa: F811 (the fixture imported above)
        monkeypatch: pytest.MonkeyPatch) -> None:
    base, run_dir, offset = stack
    monkeypatch.setenv("OLLAMAMAX_API_KEYS", ENV_KEY)  # for `up` and the services it starts
    registry = load_registry(REGISTRY, profile="full", offset=offset, run_dir=run_dir)
    port = registry.services["postgres"].primary_port
    up(base)
    urls = {name: registry.url(registry.services[name])
            for name in ("gateway", "hub", "fallback", "inference")}

    key = created_key(base, "alice", "--rate-limit", "100")
    assert accepted_by(urls, key) == dict.fromkeys(urls, True)
    # In PostgreSQL, as its digest only; the schema at its version; no SQLite file made.
    assert psql(port, "SELECT max(version) FROM schema_version", run_dir) == "1"
    assert psql(port, "SELECT name, role FROM api_keys", run_dir) == "alice|user"
    assert psql(port, f"SELECT count(*) FROM api_keys WHERE digest = '{key}'", run_dir) == "0"
    assert not (run_dir / "keys.sqlite").exists()
    # Without --profile, `keys` finds the running stack's profile (and so its PostgreSQL).
    without_profile = [a for a in base if a not in ("--profile", "full")]
    assert listed(without_profile)["alice"]["state"] == "active"

    since = revoked(base, "alice")
    taken = seconds_until_refused(urls, key, since)
    print(f"\n[postgresql] revoked key refused after (s): {taken}")

    brief = created_key(base, "brief", "--expires", "10s")
    assert accepted_by(urls, brief) == dict.fromkeys(urls, True)
    expires_at = listed(base)["brief"]["expires_at"]
    assert isinstance(expires_at, float)
    since = time.monotonic() + (expires_at - time.time())
    while time.monotonic() < since:
        time.sleep(0.05)
    taken = seconds_until_refused(urls, brief, since)
    print(f"[postgresql] expired key refused after (s): {taken}")
    # With redis, a key's --rate-limit is one budget across the services.
    limited = created_key(base, "limited", "--rate-limit", "3")
    assert gateway_accepts(urls["gateway"], limited) and hub_accepts(urls["hub"], limited)
    assert inference_accepts(urls["inference"], limited)
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=urls["inference"],
                      headers={"Authorization": f"Bearer {limited}"}).list()
    assert refused.value.status_code == 429
    states = {name: entry["state"] for name, entry in listed(base).items()}
    assert states == {"alice": "revoked", "brief": "expired", "limited": "active"}
    assert gateway_accepts(urls["gateway"], ENV_KEY)
