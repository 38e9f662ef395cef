"""Replay's pure rules (SPEC §6, issue 14): the range, the overwrite, the replay's life.

Each test is named after the rule it checks.
"""

from __future__ import annotations

import pytest

from streams.codec import encode_telemetry
from streams.control import Command, InferenceState, ReplayContext, StaticCatalog, decide
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.replay import (
    MAX_REPLAY_POINTS,
    ReplayState,
    check_range,
    keys_to_tombstone,
    latest_standing,
    score_range,
)
from streams.scoring import AssetScorer
from streams.simulate import Fault, generate_fleet

DELTA = 1_000
NOW = 1_767_225_600_000
FINALISED = 10_000_000
ACTIVE = InferenceState(InferenceConfig("inf", "m", "tele"), "Active", 1, 0, 0, 0)
CTX = ReplayContext(DELTA, FINALISED)


def replay_cmd(start: object, end: object, cid: str = "c1") -> Command:
    return Command(cid, "replay", "inf", {"start_ms": start, "end_ms": end}, NOW, "cli")


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


@pytest.mark.parametrize("params", [{}, {"start_ms": "0", "end_ms": 5}, {"start_ms": 0.5, "end_ms": 5},
                                    {"start": 0, "end": 5}])
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
    assert d.replay == ReplayState.accepted("inf/replay/1000-3000", "inf", 1_000, 3_000, 2, NOW)


def test_a_second_replay_is_rejected_with_the_running_ones_id_and_progress() -> None:
    first = decide(ACTIVE, replay_cmd(0, 100_000), StaticCatalog(), NOW, replay=CTX).replay
    assert first is not None
    running = first.running(NOW).progressed(40, NOW)
    d = decide(ACTIVE, replay_cmd(0, 5_000, "c2"), StaticCatalog(), NOW,
               replay=ReplayContext(DELTA, FINALISED, running))
    assert not d.accepted and "inf/replay/0-100000" in d.reason and "40/100" in d.reason
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


# --- scoring a range apart from the live stream -------------------------------------------

T0 = 1_767_225_600_000
S = 1_000


def _pump(points: int = 120, fault_at: int = 70) -> list[Reading]:
    return generate_fleet(["p", "q"], points, T0, S, seed=9,
                          faults=[Fault("p", "spike", fault_at, 1)]).readings


def _live_start_anomalies(model: Model, readings: list[Reading], start: int, end: int) -> set[str]:
    """What a live engine started at ``start`` finds in ``[start, end)``: the reference."""
    cfg = InferenceConfig("inf", "m", "tele", clock="event", idle_timeout_ms=1_000,
                          start_ms=start)
    e = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)
    keys: list[str] = []
    for r in readings:
        out = e.process_batch([Message("tele", 0, 0, r.asset_id.encode(), encode_telemetry([r]))],
                              now_ms=0)
        keys += [a.key for _, a in out.anomalies]
    keys += [a.key for _, a in e.tick(now_ms=10**13).anomalies]
    return {k for k in keys if start <= int(k.rsplit("/", 1)[1]) < end}


def test_a_range_scores_as_a_live_start_at_its_beginning_would(model: Model) -> None:
    readings = _pump()
    start, end = T0 + 40 * S, T0 + 100 * S
    live = AssetScorer(InferenceConfig("inf", "m", "tele", clock="event"), model)
    anomalies, done = score_range(live, readings, start, end, "inf/replay/x")
    assert f"inf/p/{T0 + 70 * S}" in {a.key for a in anomalies}
    assert {a.key for a in anomalies} == _live_start_anomalies(model, readings, start, end)
    assert done == 2 * 60 and all(a.replay_id == "inf/replay/x" for a in anomalies)


def test_scoring_a_range_is_order_independent_and_repeatable(model: Model) -> None:
    readings = _pump()
    live = AssetScorer(InferenceConfig("inf", "m", "tele", clock="event"), model)
    once = score_range(live, readings, T0 + 40 * S, T0 + 100 * S, "r")
    assert score_range(live, list(reversed(readings)), T0 + 40 * S, T0 + 100 * S, "r") == once


def test_a_replay_of_some_assets_scores_and_names_only_those(model: Model) -> None:
    readings = _pump()
    live = AssetScorer(InferenceConfig("inf", "m", "tele", clock="event"), model)
    both, _ = score_range(live, readings, T0 + 40 * S, T0 + 100 * S, "r")
    only_q, done = score_range(live, readings, T0 + 40 * S, T0 + 100 * S, "r", frozenset({"q"}))
    assert done == 60
    assert {a.key for a in only_q} == {a.key for a in both if a.asset_id == "q"}
    assert keys_to_tombstone([f"inf/p/{T0 + 50 * S}", f"inf/q/{T0 + 50 * S}"], [], "inf", T0,
                             T0 + 100 * S, frozenset({"q"})) == [f"inf/q/{T0 + 50 * S}"]


def test_a_replay_command_may_name_assets_within_the_inference() -> None:
    filtered = InferenceState(InferenceConfig("inf", "m", "tele", assets=frozenset({"a", "b"})),
                              "Active", 1, 0, 0, 0)

    def asking(assets: object) -> Command:
        return Command("c", "replay", "inf", {"start_ms": 0, "end_ms": 5_000, "assets": assets},
                       NOW, "cli")

    d = decide(filtered, asking(["b"]), StaticCatalog(), NOW, replay=CTX)
    assert d.accepted and d.replay is not None and d.replay.assets == ("b",)
    assert d.replay.replay_id.startswith("inf/replay/0-5000/assets-")
    other = decide(filtered, asking(["a"]), StaticCatalog(), NOW, replay=CTX).replay
    assert other is not None and other.replay_id != d.replay.replay_id
    outside = decide(filtered, asking(["c"]), StaticCatalog(), NOW, replay=CTX)
    assert not outside.accepted and "outside the inference's filter: c" in outside.reason
    assert "must be a list" in decide(filtered, asking("b"), StaticCatalog(), NOW,
                                      replay=CTX).reason
