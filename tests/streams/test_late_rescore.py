"""Automatic re-score of late data: which ranges, how they coalesce, when they start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.control import Command, InferenceState, StaticCatalog, decide
from streams.inference import InferenceConfig
from streams.late_rescore import (
    COALESCE_MS,
    MAX_PENDING,
    MIN_GAP_MS,
    LateRequests,
    RescoreQueue,
    RescoreRange,
    affected_range,
    coalesce,
)
from streams.replay import MAX_REPLAY_POINTS, ReplayState, replay_points

S = 1_000  # Δ


def r(start: int, end: int, *assets: str) -> RescoreRange:
    return RescoreRange(start * S, end * S, frozenset(assets or ("a",)))


def test_a_late_point_changes_its_slot_and_the_windows_that_held_it() -> None:
    got = affected_range(40 * S, S, window_size=8)
    assert (got.start_ms, got.end_ms) == (40 * S, 49 * S)


def test_overlapping_and_nearby_ranges_become_one_replay_within_the_limit() -> None:
    got = coalesce([r(0, 9, "a"), r(5, 14, "b"), r(1_900, 1_909, "a")], S)
    assert [(x.start_ms, x.end_ms, sorted(x.assets)) for x in got] == [
        (0, 1_909 * S, ["a", "b"])]


def test_ranges_further_apart_than_one_replay_stay_apart_and_none_exceeds_the_limit() -> None:
    got = coalesce([r(0, 9), r(1_995, 2_004), r(5_000, 9_500)], S)
    assert [(x.start_ms // S, x.end_ms // S) for x in got] == [
        (0, 9), (1_995, 2_004), (5_000, 7_000), (7_000, 9_000), (9_000, 9_500)]
    assert all(replay_points(x.start_ms, x.end_ms, S) <= MAX_REPLAY_POINTS for x in got)


def test_a_worker_asks_once_per_inference_after_collecting_for_a_while() -> None:
    asked = LateRequests()
    asked.add("inf", "a", 10 * S, S, 4, now_ms=0)
    asked.add("other", "a", 10 * S, S, 4, now_ms=COALESCE_MS // 2)
    asked.add("inf", "b", 12 * S, S, 4, now_ms=COALESCE_MS - 1)
    assert asked.due(COALESCE_MS - 1) == []
    first = asked.due(COALESCE_MS)
    assert [(i, x.start_ms, x.end_ms, sorted(x.assets)) for i, x in first] == [
        ("inf", 10 * S, 17 * S, ["a", "b"])]
    assert asked.due(COALESCE_MS) == [], "asked once, then forgotten"
    assert [i for i, _ in asked.due(COALESCE_MS + COALESCE_MS // 2)] == ["other"]


def test_a_storm_of_late_points_is_held_in_few_ranges() -> None:
    asked = LateRequests()
    for t in range(50_000):
        asked.add("inf", f"pump-{t % 7}", t * S, S, 16, now_ms=0)
    got = asked.due(COALESCE_MS)
    assert len(got) == -(-(50_000 + 16) // MAX_REPLAY_POINTS)
    assert sorted({a for _, x in got for a in x.assets}) == [f"pump-{i}" for i in range(7)]


def test_the_queue_starts_one_range_at_a_time_within_the_finalised_bound() -> None:
    q = RescoreQueue(S).add([r(10, 20), r(3_000, 3_010)])
    assert q.next(0, finalised_ms=15 * S, busy=False)[0] is None, "not finalised yet"
    assert q.next(0, finalised_ms=30 * S, busy=True)[0] is None, "one replay at a time"
    first, q = q.next(0, finalised_ms=10_000 * S, busy=False)
    assert first is not None and (first.start_ms, first.end_ms) == (10 * S, 20 * S)
    assert q.next(MIN_GAP_MS - 1, 10_000 * S, busy=False)[0] is None, "rate-limited"
    second, q = q.next(MIN_GAP_MS, 10_000 * S, busy=False)
    assert second is not None and second.start_ms == 3_000 * S
    assert q.pending == ()


def test_an_automatic_replay_a_worker_abandoned_runs_again_and_a_commanded_one_does_not() -> None:
    q = RescoreQueue(S).add([r(10, 20, "a")])
    started, q = q.next(0, finalised_ms=100 * S, busy=False)
    assert started is not None and q.pending == ()
    late = ReplayState.accepted("late-1", "inf", started.start_ms, started.end_ms, 10, 0,
                                assets=sorted(started.assets), origin="late").running(1)
    gone = late.abandoned(2)
    assert gone.status == "Failed" and "queued to re-score again" in gone.reason
    q = q.retry(gone)
    again, q = q.next(MIN_GAP_MS, finalised_ms=100 * S, busy=False)
    assert again == started, "the same range, for the same assets"
    commanded = ReplayState.accepted("cmd-1", "inf", 0, 10 * S, 10, 0).running(1).abandoned(2)
    assert "run the replay again" in commanded.reason
    assert q.retry(commanded).pending == ()


def test_the_queue_is_bounded_and_counts_what_it_dropped() -> None:
    far = [r(k * 3_000, k * 3_000 + 5) for k in range(MAX_PENDING + 10)]
    q = RescoreQueue(S).add(far)
    assert len(q.pending) == MAX_PENDING and q.dropped == 10
    assert q.pending[0].start_ms == 10 * 3_000 * S, "the oldest ranges go first"
    assert RescoreQueue.from_record(q.to_record()) == q


@pytest.mark.parametrize("plain", [
    {"start_ms": 5, "end_ms": 5, "assets": ["a"]},
    {"start_ms": 0, "end_ms": 5, "assets": []},
    {"start_ms": True, "end_ms": 5, "assets": ["a"]},
    {"start_ms": 0, "end_ms": 5, "assets": "a"},
    [0, 5, ["a"]],
])
def test_a_malformed_range_is_refused(plain: object) -> None:
    with pytest.raises(ValueError, match="late range"):
        RescoreRange.from_record(plain)  # type: ignore[arg-type]


def _state(**options: object) -> InferenceState:
    cfg = InferenceConfig("inf", "m", "t", **options)  # type: ignore[arg-type]
    return InferenceState(cfg, "Active", 1, 0, 0, 0)


def _request(ranges: object, interval: object = S) -> Command:
    return Command("l", "rescore_late", "inf", {"interval_ms": interval, "ranges": ranges}, 0,
                   "worker:w")


def test_late_requests_come_from_workers_only_and_for_inferences_that_asked() -> None:
    ok = [{"start_ms": 0, "end_ms": 9 * S, "assets": ["a"]}]
    public = decide(_state(rescore_late=True), _request(ok), StaticCatalog(), 1)
    assert not public.accepted and "internal command" in public.reason
    off = decide(_state(), _request(ok), StaticCatalog(), 1, internal=True)
    assert not off.accepted and "rescore_late is off" in off.reason
    paused = replace(_state(rescore_late=True), status="UserPaused")
    assert not decide(paused, _request(ok), StaticCatalog(), 1, internal=True).accepted
    taken = decide(_state(rescore_late=True), _request(ok), StaticCatalog(), 1, internal=True)
    assert taken.accepted and taken.late == (r(0, 9, "a"),) and taken.late_interval_ms == S


@pytest.mark.parametrize(("ranges", "interval", "why"), [
    ([], S, "1 to 100 late ranges"),
    ([{"start_ms": 0, "end_ms": 9}] * 2, S, "late range"),
    ([{"start_ms": 0, "end_ms": 9, "assets": ["a"]}], 0, "interval_ms"),
    ([{"start_ms": 0, "end_ms": 9, "assets": ["elsewhere"]}], S, "outside the inference's filter"),
])
def test_a_malformed_late_request_is_rejected_with_its_reason(ranges: object, interval: int,
                                                              why: str) -> None:
    st = _state(rescore_late=True, assets=frozenset({"a"}))
    d = decide(st, _request(ranges, interval), StaticCatalog(), 1, internal=True)
    assert not d.accepted and why in d.reason


def test_the_option_is_off_by_default_and_travels_with_the_inference() -> None:
    assert InferenceConfig("i", "m", "t").rescore_late is False
    on = InferenceConfig.from_dict({"inference_id": "i", "model_id": "m", "topic": "t",
                                    "rescore_late": True})
    assert on.rescore_late and InferenceConfig.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="rescore_late must be true or false"):
        InferenceConfig.from_dict({"inference_id": "i", "model_id": "m", "topic": "t",
                                   "rescore_late": "yes"})
