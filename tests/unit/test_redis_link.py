"""The redis link's URL handling: passwords never shown, a bad URL a usage error."""

from __future__ import annotations

import pytest

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.redis_link import RedisLink, shown_url


def test_a_password_is_masked_and_the_rest_kept() -> None:
    assert shown_url("redis://:s3cret@cache:6380/2") == "redis://:***@cache:6380/2"
    assert shown_url("rediss://app:s3cret@cache/0") == "rediss://app:***@cache/0"
    assert shown_url("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"


def test_a_url_that_is_not_redis_names_the_variable() -> None:
    with pytest.raises(UsageError, match="OLLAMAMAX_REDIS_URL='http://cache'"):
        RedisLink("http://cache")


def test_a_link_is_memory_until_redis_has_answered() -> None:
    link = RedisLink("redis://127.0.0.1:1")
    assert link.store == "memory" and not link.up and link.error
