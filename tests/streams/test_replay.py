"""Replay's pure rules (SPEC §6, issue 14): the range, the overwrite, the replay's life.

Each test is named after the rule it checks.
"""

from __future__ import annotations

import pytest

from streams.control import Command, InferenceState, ReplayContext, StaticCatalog, decide
from streams.inference import InferenceConfig
from streams.replay import (
    MAX_REPLAY_POINTS,
    ReplayState,
    check_range,
    keys_to_tombstone,
    latest_standing,
)

DELTA = 1_000
NOW = 1_767_225_600_000
FINALISED = 10_000_000
ACTIVE = InferenceState(InferenceConfig("inf", "m", "tele"), "Active", 1, 0, 0, 0)
CTX = ReplayContext(DELTA, FINALISED)


def replay_cmd(start: object, end: object, cid: str = "c1") -> Command:
    return Command(cid, "replay", "inf", {"start": start, "end": end}, NOW, "cli")


def test_2000_points_are_accepted_and_2001_rejected_naming_the_limit() -> None:
    assert check_range(0, MAX_REPLAY_POINTS * DELTA, DELTA, FINALISED) == 2_000
    d = decide(ACTIVE, replay_cmd(0, 2_001 * DELTA), StaticCatalog(), NOW, replay=CTX)
    assert not d.accepted and "2001" in d.reason and "at most 2000" in d.reason


def test_a_partial_interval_counts_as_a_point() -> None:
    with pytest.raises(ValueError, match="2001 data points"):
        check_range(0, 2_000 * DELTA + 1, DELTA, FINALISED)


@pytest.mark.parametrize(("start", "end", "why"), [
    (5_000, 5_000, "must be before"),
    (6_000, 5_000, "must be before"),
    (0, FINALISED + 1, "within what has been finalised"),
])
def test_bad_ranges_are_rejected_with_the_rule(start: int, end: int, why: str) -> None:
    d = decide(ACTIVE, replay_cmd(start, end), StaticCatalog(), NOW, replay=CTX)
    assert not d.accepted and why in d.reason and d.state is None and d.replay is None


def test_nothing_finalised_means_no_replay() -> None:
    d = decide(ACTIVE, replay_cmd(0, 1_000), StaticCatalog(), NOW,
               replay=ReplayContext(DELTA, None))
    assert not d.accepted and "nothing has been finalised" in d.reason


@pytest.mark.parametrize("params", [{}, {"start": "0", "end": 5}, {"start": 0.5, "end": 5}])
def test_start_and_end_must_be_whole_epoch_ms(params: dict[str, object]) -> None:
    d = decide(ACTIVE, Command("c", "replay", "inf", params, NOW, "cli"), StaticCatalog(), NOW,
               replay=CTX)
    assert not d.accepted and "replay" in d.reason


def test_a_paused_or_unknown_inference_cannot_replay() -> None:
    paused = decide(ACTIVE, Command("p", "pause", "inf", {}, NOW, "cli"), StaticCatalog(), NOW).state
    assert not decide(paused, replay_cmd(0, 1_000), StaticCatalog(), NOW, replay=CTX).accepted
    d = decide(None, replay_cmd(0, 1_000), StaticCatalog(), NOW, replay=CTX)
    assert not d.accepted and "no inference" in d.reason


def test_an_accepted_replay_leaves_the_inference_state_alone() -> None:
    d = decide(ACTIVE, replay_cmd(1_000, 3_000), StaticCatalog(), NOW, replay=CTX)
    assert d.accepted and d.state is None
    assert d.replay == ReplayState.accepted("inf/replay/c1", "inf", 1_000, 3_000, 2, NOW)


def test_a_second_replay_is_rejected_with_the_running_ones_id_and_progress() -> None:
    first = decide(ACTIVE, replay_cmd(0, 100_000), StaticCatalog(), NOW, replay=CTX).replay
    assert first is not None
    running = first.running(NOW).progressed(40, NOW)
    d = decide(ACTIVE, replay_cmd(0, 5_000, "c2"), StaticCatalog(), NOW,
               replay=ReplayContext(DELTA, FINALISED, running))
    assert not d.accepted and "inf/replay/c1" in d.reason and "40/100" in d.reason
    done = running.succeeded(NOW)
    assert decide(ACTIVE, replay_cmd(0, 5_000, "c2"), StaticCatalog(), NOW,
                  replay=ReplayContext(DELTA, FINALISED, done)).accepted


def test_earlier_anomalies_in_the_range_that_no_longer_stand_are_tombstoned() -> None:
    existing = ["inf/a/1000", "inf/a/2000", "inf/b/1000", "inf/a/9000", "other/a/1000"]
    assert keys_to_tombstone(existing, ["inf/a/2000"], "inf", 0, 5_000) == \
        ["inf/a/1000", "inf/b/1000"]


def test_replaying_twice_tombstones_nothing_new() -> None:
    republished = ["inf/a/2000"]
    log = [("inf/a/1000", False), ("inf/a/2000", False)]
    first = keys_to_tombstone(latest_standing(log), republished, "inf", 0, 5_000)
    log += [(k, False) for k in republished] + [(k, True) for k in first]
    assert keys_to_tombstone(latest_standing(log), republished, "inf", 0, 5_000) == []
    assert latest_standing(log) == {"inf/a/2000"}


def test_the_replay_life_goes_accepted_running_then_succeeded_or_failed() -> None:
    r = ReplayState.accepted("r", "inf", 0, 10_000, 10, NOW)
    with pytest.raises(ValueError, match="cannot become Succeeded"):
        r.succeeded(NOW)
    ok = r.running(NOW).progressed(4, NOW).succeeded(NOW)
    assert (ok.status, ok.done) == ("Succeeded", 10)
    with pytest.raises(ValueError, match="cannot become Failed"):
        ok.failed("late", NOW)
    assert r.running(NOW).failed("broker gone", NOW).reason == "broker gone"


def test_a_replay_the_worker_left_unfinished_is_failed_on_restart_never_running_for_ever() -> None:
    r = ReplayState.accepted("r", "inf", 0, 10_000, 10, NOW).running(NOW).progressed(3, NOW)
    after = r.abandoned(NOW + 1)
    assert after.status == "Failed" and after.reason is not None and "3/10" in after.reason
    assert after.abandoned(NOW + 2) == after


def test_replay_records_round_trip() -> None:
    r = ReplayState.accepted("r", "inf", 0, 10_000, 10, NOW).running(NOW).failed("x", NOW)
    assert ReplayState.from_record(r.to_record()) == r
