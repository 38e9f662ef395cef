"""Retry policy and delivery state: back-off bounds, budget, dead letters, snapshots."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codec import loads
from streams.delivery import (
    Attempt,
    Delivery,
    RetryPolicy,
    classify_http_status,
    encode_hook_dead_letter,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, "delivered"), (201, "delivered"), (299, "delivered"), (400, "permanent"),
     (401, "permanent"), (403, "permanent"), (404, "permanent"), (410, "permanent"),
     (408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"),
     (301, "retry"), (100, "retry")],
)
def test_http_status_decides_delivered_retry_or_permanent(status: int, kind: str) -> None:
    assert classify_http_status(status) == kind


@pytest.mark.parametrize(
    ("base", "cap", "failures", "expected"),
    [(500, 60_000, 1, 500), (500, 60_000, 2, 1_000), (500, 60_000, 3, 2_000),
     (500, 60_000, 8, 60_000), (500, 3_000, 3, 2_000), (500, 3_000, 4, 3_000),
     (0, 1_000, 5, 0), (1_000, 1_000, 10_000, 1_000)],
)
def test_back_off_cap_doubles_up_to_the_maximum(base: int, cap: int, failures: int, expected: int) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_ms=base, max_delay_ms=cap, jitter="none")
    assert policy.cap_ms(failures) == expected
    assert policy.delay_ms(failures, random.Random(0)) == expected


def test_equal_jitter_keeps_at_least_half_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_ms=1_000, max_delay_ms=8_000, jitter="equal")
    rng = random.Random(3)
    delays = [policy.delay_ms(3, rng) for _ in range(200)]
    assert min(delays) >= 2_000 and max(delays) <= 4_000
    assert len(set(delays)) > 50  # it is jittered


def test_full_jitter_spreads_over_the_whole_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_ms=1_000, max_delay_ms=8_000, jitter="full")
    rng = random.Random(4)
    delays = [policy.delay_ms(4, rng) for _ in range(500)]
    assert min(delays) < 1_000 and max(delays) > 7_000 and max(delays) <= 8_000


def test_same_seed_same_delays() -> None:
    policy = RetryPolicy(jitter="full")
    assert ([policy.delay_ms(n, random.Random(9)) for n in range(1, 9)]
            == [policy.delay_ms(n, random.Random(9)) for n in range(1, 9)])


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"max_attempts": 0}, "max_attempts must be ≥ 1"),
     ({"base_delay_ms": -1}, "base_delay_ms must be an integer ≥ 0"),
     ({"max_delay_ms": 1.5}, "max_delay_ms must be an integer ≥ 0"),
     ({"jitter": "some"}, "jitter must be one of full, equal, none")],
)
def test_invalid_policies_are_refused_with_a_reason(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 20),
    base_delay_ms=st.integers(0, 10_000),
    max_delay_ms=st.integers(0, 120_000),
    jitter=st.sampled_from(["full", "equal", "none"]),
)


@given(policies, st.integers(1, 10_000), st.integers(0, 2**32))
def test_delay_never_exceeds_the_maximum(policy: RetryPolicy, failures: int, seed: int) -> None:
    delay = policy.delay_ms(failures, random.Random(seed))
    assert 0 <= delay <= policy.max_delay_ms
    assert delay <= policy.cap_ms(failures)


@given(policies, st.integers(0, 2**32), st.integers(0, 10**12))
def test_a_delivery_that_always_fails_is_dead_after_its_budget(
    policy: RetryPolicy, seed: int, start_ms: int
) -> None:
    rng = random.Random(seed)
    d = Delivery.pending("n", "h", start_ms)
    now = start_ms
    while not d.done:
        assert d.due(d.next_attempt_ms) and d.attempts < policy.max_attempts
        now = d.next_attempt_ms
        before = d
        d = d.failed(now, "HTTP 503", permanent=False, policy=policy, rng=rng)
        assert d.attempts == before.attempts + 1
        if not d.done:
            assert now <= d.next_attempt_ms <= now + policy.max_delay_ms
    assert d.outcome == "dead" and d.attempts == policy.max_attempts
    assert d.finished_at_ms == now and d.last_error == f"HTTP 503 (after {policy.max_attempts} attempts)"
    assert not d.due(10**15)


@given(policies, st.integers(0, 30), st.integers(0, 2**32))
def test_snapshot_restore_round_trips_at_any_step(policy: RetryPolicy, failures: int, seed: int) -> None:
    rng = random.Random(seed)
    d = Delivery.pending("n1", "ops", 7)
    for i in range(failures):
        if d.done:
            break
        d = d.failed(100 * i, f"error {i}", permanent=False, policy=policy, rng=rng)
    assert Delivery.restore(d.snapshot()) == d


def test_a_permanent_failure_is_dead_at_once() -> None:
    d = Delivery.pending("n", "h", 0).record(Attempt("permanent", "HTTP 401 Unauthorized"), 5,
                                            RetryPolicy(max_attempts=8), random.Random(0))
    assert (d.outcome, d.attempts, d.finished_at_ms) == ("dead", 1, 5)
    assert d.last_error == "HTTP 401 Unauthorized (permanent)"


def test_success_after_failures_counts_every_attempt() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_ms=100, jitter="none")
    d = Delivery.pending("n", "h", 0)
    for now in (0, 100, 300):
        d = d.record(Attempt("retry", "connection refused"), now, policy, random.Random(0))
    d = d.record(Attempt("delivered", "HTTP 200"), d.next_attempt_ms, policy, random.Random(0))
    assert (d.outcome, d.attempts, d.finished_at_ms, d.last_error) == ("delivered", 4, 700,
                                                                        "connection refused")


def test_a_finished_delivery_refuses_more_attempts() -> None:
    d = Delivery.pending("n", "h", 0).succeeded(1)
    with pytest.raises(ValueError, match="already delivered"):
        d.failed(2, "x", permanent=False, policy=RetryPolicy(), rng=random.Random(0))
    with pytest.raises(ValueError, match="already delivered"):
        d.succeeded(3)


def test_not_due_before_its_time() -> None:
    d = Delivery.pending("n", "h", 0).failed(0, "x", permanent=False,
                                            policy=RetryPolicy(base_delay_ms=1_000, jitter="none"),
                                            rng=random.Random(0))
    assert not d.due(999) and d.due(1_000)


def test_long_errors_are_cut() -> None:
    d = Delivery.pending("n", "h", 0).failed(0, "x" * 5_000, permanent=False, policy=RetryPolicy(),
                                            rng=random.Random(0))
    assert d.last_error is not None and len(d.last_error) == 500


@pytest.mark.parametrize("snap", [{}, {"notification_id": "n"},
                                  {**Delivery.pending("n", "h", 0).snapshot(), "outcome": "lost"}])
def test_restore_refuses_what_is_not_a_snapshot(snap: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"snapshot|outcome"):
        Delivery.restore(snap)


def test_dead_letter_of_a_delivery_carries_its_reason_and_notification() -> None:
    d = Delivery("n1", "ops", 100, 8, 0, "HTTP 503 (after 8 attempts)", "dead", 900)
    rec = loads(encode_hook_dead_letter(reason="HTTP 503 (after 8 attempts)", dead_at_ms=900, delivery=d,
                                        hook_config={"name": "ops", "secret": "***"},
                                        notification={"notification_id": "n1"}))
    assert rec["notification_id"] == "n1" and rec["hook"] == "ops" and rec["attempts"] == 8
    assert rec["created_at"] == 100 and rec["dead_at"] == 900
    assert rec["hook_config"]["secret"] == "***" and "raw_b64" not in rec
