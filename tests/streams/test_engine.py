"""The engine: routing to home partitions, slots and the inference clock, late points, idle ticks."""

from __future__ import annotations

from typing import Any

from streams.codec import encode_telemetry
from streams.engine import Engine, Message, by_asset_topic
from streams.inference import InferenceConfig
from streams.model import Model
from streams.partitioning import home_partition
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet

T0 = 1_767_225_600_000
S = 1_000


def engine(model: Model, partitions: int = 1, **inference: Any) -> Engine:
    cfg = InferenceConfig("inf", "m", "tele", **{"clock": "event", "idle_timeout_ms": 1_000,
                                                   **inference})
    return Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=partitions)


def msg(readings: list[Reading], partition: int = 0, offset: int = 0) -> Message:
    return Message("tele", partition, offset, readings[0].asset_id.encode(),
                   encode_telemetry(readings))


def scored_keys(e: Engine, readings: list[Reading], batch: int = 1) -> list[str]:
    keys = []
    for i in range(0, len(readings), batch):
        out = e.process_batch([msg([r]) for r in readings[i:i + batch]], now_ms=0)
        keys += [a.key for _, a in out.anomalies]
    keys += [a.key for _, a in e.tick(now_ms=10**13).anomalies]
    return keys


def pump(points: int = 80, fault_at: int = 50) -> list[Reading]:
    return generate_fleet(["p"], points, T0, S, seed=9,
                          faults=[Fault("p", "spike", fault_at, 1)]).readings


def test_a_record_at_or_before_the_last_one_a_state_took_is_a_redelivery_not_late(
        model: Model) -> None:
    """Its partition's checkpoint is written after the state: a crash between the two must
    not turn the re-delivered records into late ones (the chaos suite found it)."""
    readings = pump(30)
    first = engine(model)
    first.process_batch([msg([r], offset=i) for i, r in enumerate(readings)], now_ms=0)
    # what the changelog holds: the states, but no checkpoint (lost in the crash)
    stored = {k: first.store.snapshot(k) for k in first.states}
    again = Engine([AssetScorer(first.scorers[0].inference, model)], load=stored.get, partitions=1)
    out = again.process_batch([msg([r], offset=i) for i, r in enumerate(readings[:5])], now_ms=0)
    assert (out.counts["late"], out.counts["duplicate"]) == (0, 5)
    # a record after the last one taken, for a finalised slot, is late all the same
    late_point = Reading("p", T0 + 3 * S, {s: 1.0 for s in SIGNALS})
    assert again.process_batch([msg([late_point], offset=30)], now_ms=0).counts["late"] == 1


def test_points_out_of_order_before_they_are_due_score_as_in_order(model: Model) -> None:
    readings = pump()
    shuffled = list(readings)
    for i in range(0, len(shuffled) - 1, 2):  # swap neighbours: late by one slot, never late
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    assert scored_keys(engine(model), shuffled, batch=4) == scored_keys(engine(model), readings)


def test_the_spike_is_an_anomaly_and_batching_changes_nothing(model: Model) -> None:
    readings = pump()
    one = scored_keys(engine(model), readings, batch=1)
    assert f"inf/p/{T0 + 50 * S}" in one
    assert scored_keys(engine(model), readings, batch=25) == one


def test_a_point_whose_slot_was_finalised_is_late_and_not_scored(model: Model) -> None:
    e = engine(model)
    readings = pump(30)
    e.process_batch([msg([r], offset=i) for i, r in enumerate(readings)], now_ms=0)
    late_point = Reading("p", T0 + 3 * S, {s: 1.0 for s in SIGNALS})
    out = e.process_batch([msg([late_point], offset=len(readings))], now_ms=0)
    assert out.counts["late"] == 1 and out.counts["scored"] == 0
    (partition, inference_id, late), = out.late
    assert (partition, inference_id, late.slot_ms) == (0, "inf", T0 + 3 * S)
    assert late.late_by_ms > 0


def test_an_idle_asset_is_finalised_by_the_tick_after_the_idle_timeout(model: Model) -> None:
    e = engine(model)
    readings = pump(20)
    out = e.process_batch([msg([r]) for r in readings], now_ms=5_000)
    finalised = out.counts["warming_up"] + out.counts["scored"]
    assert finalised == len(readings) - 1  # the last slot waits for a later point
    assert sum(e.tick(now_ms=5_500).counts.values()) == 0  # not idle long enough yet
    later = e.tick(now_ms=6_000)
    assert later.counts["scored"] == 1 and list(later.snapshots) == ["inf/p"]


def test_wall_clock_mode_scores_a_slot_once_it_is_due_on_the_wall(model: Model) -> None:
    e = engine(model, clock="wall")
    readings = pump(20)
    due_last = readings[-1].ts_ms + S  # Δ after the last slot, D = 0
    out = e.process_batch([msg([r]) for r in readings], now_ms=due_last - 1)
    assert out.counts["warming_up"] + out.counts["scored"] == len(readings) - 1
    assert e.tick(now_ms=due_last).counts["scored"] == 1


def test_a_missing_point_is_filled_and_a_long_gap_reported(model: Model) -> None:
    readings = pump(60)
    holes = {30} | set(range(40, 50))  # one missing point, then ten
    kept = [r for i, r in enumerate(readings) if i not in holes]
    e = engine(model, max_fill_points=3)
    out = e.process_batch([msg([r]) for r in kept], now_ms=0)
    assert out.counts["filled"] == 1
    ((_, _, key, gap),) = out.gaps
    assert key == "inf/p" and gap.points == 10 and gap.from_ms == T0 + 40 * S


def test_readings_off_their_home_partition_are_forwarded_then_scored_there(model: Model) -> None:
    e = engine(model, partitions=4)
    home = home_partition("p", 4)
    away = (home + 1) % 4
    r = pump(1)[0]
    out = e.process_batch([msg([r], partition=away)], now_ms=0)
    assert out.counts["forwarded"] == 1 and not e.states
    ((topic, partition, readings, _),) = out.forward
    assert (topic, partition, readings) == (by_asset_topic("tele"), home, [r])
    back = e.process_batch([Message(topic, partition, 0, b"p", encode_telemetry(readings))], 0)
    assert back.counts["received"] == 0 and list(back.snapshots) == ["inf/p"]


def test_a_restored_engine_continues_exactly_as_an_uninterrupted_one(model: Model) -> None:
    readings = pump(90, fault_at=70)
    whole = scored_keys(engine(model), readings)
    first = engine(model)
    keys = []
    for r in readings[:60]:
        keys += [a.key for _, a in first.process_batch([msg([r])], now_ms=0).anomalies]
    # what the table holds after a stop: the last snapshot of every asset
    snaps = {k: state.snapshot() for k, (_, state, _) in first.states.items()}
    second = Engine(first.scorers_by_topic["tele"], load=snaps.get, partitions=1)
    keys += scored_keys(second, readings[60:])
    assert f"inf/p/{T0 + 70 * S}" in keys
    assert keys == whole


def test_a_feed_that_pauses_longer_than_the_idle_timeout_is_not_late_when_it_resumes(
    model: Model,
) -> None:
    e = engine(model)
    readings = pump(40)
    first = e.process_batch([msg([r]) for r in readings[:20]], now_ms=0)
    paused = e.tick(now_ms=60_000)  # a minute of wall time without a point: idle
    assert paused.counts["warming_up"] + paused.counts["scored"] == 1  # the pending point
    resumed = e.process_batch([msg([r]) for r in readings[20:]], now_ms=60_001)
    assert resumed.counts["late"] == 0
    total = sum(out.counts["warming_up"] + out.counts["scored"]
                for out in (first, paused, resumed, e.tick(now_ms=10**13)))
    assert total == len(readings)


def test_a_lasting_level_adopted_by_the_model_is_reported_with_its_asset(model: Model) -> None:
    from dataclasses import replace

    from streams.decision import FlagPolicy

    adopting = replace(model, flags=FlagPolicy(adopt_points=40))
    readings = generate_fleet(["p"], 300, T0, S, seed=9).readings
    shifted = [r if i < 100 else Reading(r.asset_id, r.ts_ms, {s: v + 40.0 for s, v in
                                                               r.signals.items()})
               for i, r in enumerate(readings)]
    e = engine(adopting)
    out = e.process_batch([msg([r], offset=i) for i, r in enumerate(shifted)], now_ms=0)
    adoptions = [*out.adoptions, *e.tick(now_ms=10**13).adoptions]
    assert [(inf, key, signals) for _, inf, key, signals, _ in adoptions] == \
        [("inf", "inf/p", adopting.signals)]
    assert adoptions[0][4].ts_ms > T0 + 100 * S
