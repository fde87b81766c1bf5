"""The restart policy: doubling backoff, a crash count reset only by a stable run, the limit."""

from __future__ import annotations

from ollamamax_stack.registry.model import RestartPolicy
from ollamamax_stack.supervise import state as st
from ollamamax_stack.supervise.policy import backoff_delay, crash_count, exhausted, stable_run


def test_backoff_doubles_from_the_first_delay_and_is_capped() -> None:
    policy = RestartPolicy(limit=10, backoff=0.25, max_backoff=1.0, stable=10)
    assert [backoff_delay(policy, n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]


def test_the_crash_count_restarts_only_after_a_stable_run() -> None:
    policy = RestartPolicy(limit=5, backoff=0.25, max_backoff=10, stable=10)
    entry = st.ServiceState(name="a", ports={}, url="u", failures=2, started_at=100.0,
                            ready_at=101.0)
    assert crash_count(entry, policy, now=105.0) == 3  # ready for 4 s only
    assert crash_count(entry, policy, now=111.0) == 1  # ready for 10 s since its latest start
    entry.ready_at = 90.0  # ready before its latest restart, never since
    assert crash_count(entry, policy, now=500.0) == 3




def test_backoff_starts_at_the_first_delay_even_for_a_zero_count() -> None:
    policy = RestartPolicy(limit=3, backoff=1.5, max_backoff=100, stable=10)
    assert [backoff_delay(policy, n) for n in (0, 1, 2, 3)] == [1.5, 1.5, 3.0, 6.0]
    assert isinstance(backoff_delay(RestartPolicy(backoff=1, max_backoff=8), 2), float)


def test_the_limit_counts_restarts_not_crashes() -> None:
    policy = RestartPolicy(limit=2, backoff=0.25, max_backoff=10, stable=10)
    assert [exhausted(policy, n) for n in (1, 2, 3)] == [False, False, True]
    assert exhausted(RestartPolicy(limit=0), 1)  # limit 0: never restarted


def test_a_run_is_stable_only_once_ready_since_its_latest_start() -> None:
    entry = st.ServiceState(name="a", ports={}, url="u", started_at=100.0, ready_at=100.0)
    assert stable_run(entry, now=110.0, stable=10)  # exactly `stable` seconds: enough
    assert not stable_run(entry, now=109.9, stable=10)
    assert not stable_run(st.ServiceState(name="a", ports={}, url="u", started_at=100.0),
                          now=500.0, stable=10)  # never ready
    assert not stable_run(st.ServiceState(name="a", ports={}, url="u", ready_at=100.0),
                          now=500.0, stable=10)  # no start recorded
