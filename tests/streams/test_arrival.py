"""The arrival clock: a ``wall`` inference judges lateness by when a record reached Kafka."""

from __future__ import annotations

from streams.arrival import ArrivalClocks
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import Fault, generate_fleet

T0 = 1_767_225_600_000
S = 1_000
TP = ("tele", 0)


def test_an_unreported_partition_follows_the_wall_clock() -> None:
    assert ArrivalClocks().clock_ms([TP], wall_ms=42) == 42


def test_a_reported_partition_holds_until_it_is_known_where_reading_stands() -> None:
    clocks = ArrivalClocks()
    clocks.log_end(TP, 10, as_of_ms=5_000)
    assert clocks.clock_ms([TP], 9_000) is None
    assert clocks.needs_start() == [TP]
    clocks.start(TP, 10)  # nothing to read: caught up with the log as of 5 s
    assert clocks.clock_ms([TP], 9_000) == 5_000
    assert clocks.needs_start() == []


def test_a_backlog_moves_the_clock_at_the_pace_of_its_broker_timestamps() -> None:
    clocks = ArrivalClocks()
    clocks.start(TP, 0)
    clocks.log_end(TP, 3, as_of_ms=60_000)
    clocks.read(TP, 0, 1_000, wall_ms=60_000)
    assert clocks.clock_ms([TP], 60_000) == 1_000
    clocks.read(TP, 1, 2_000, wall_ms=60_000)
    assert clocks.clock_ms([TP], 60_000) == 2_000
    clocks.read(TP, 2, 3_000, wall_ms=60_000)  # the last record before the log end
    assert clocks.clock_ms([TP], 61_000) == 60_000


def test_the_clock_never_goes_back_nor_past_the_wall() -> None:
    clocks = ArrivalClocks()
    clocks.start(TP, 0)
    clocks.log_end(TP, 100, as_of_ms=1)
    clocks.read(TP, 0, 5_000, wall_ms=9_000)
    clocks.read(TP, 1, 4_000, wall_ms=9_000)  # CreateTime of another producer: older
    assert clocks.clock_ms([TP], 9_000) == 5_000
    clocks.read(TP, 2, 10**15, wall_ms=9_500)  # a producer's clock far ahead: capped
    assert clocks.clock_ms([TP], 9_500) == 9_500


def test_several_partitions_give_the_earliest_clock() -> None:
    clocks = ArrivalClocks()
    other = ("tele.by-asset", 0)
    for tp, ts in ((TP, 7_000), (other, 3_000)):
        clocks.start(tp, 0)
        clocks.log_end(tp, 5, as_of_ms=1)
        clocks.read(tp, 0, ts, wall_ms=10_000)
    assert clocks.clock_ms([TP, other], 10_000) == 3_000
    clocks.forget([0])
    assert clocks.clock_ms([TP, other], 10_000) == 10_000


def wall_engine(model: Model, delay_ms: int = 2_000) -> Engine:
    cfg = InferenceConfig("inf", "m", "tele", clock="wall", delay_ms=delay_ms)
    return Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)


def arrived(readings: list[Reading], first_offset: int, at_ms: int) -> list[Message]:
    """One message per reading, each reaching the broker at ``at_ms``."""
    return [Message("tele", 0, first_offset + i, r.asset_id.encode(), encode_telemetry([r]), at_ms)
            for i, r in enumerate(readings)]


def test_a_worker_that_reads_a_backlog_late_scores_every_point_that_arrived_on_time(
    model: Model,
) -> None:
    readings = generate_fleet(["p"], 40, T0, S, seed=9, faults=[Fault("p", "spike", 30, 1)]).readings
    # each reading reached Kafka just after it was taken, well before its slot was due
    messages = [m for i, r in enumerate(readings) for m in arrived([r], i, r.ts_ms + 100)]
    wall_after = readings[-1].ts_ms + 120_000  # the worker reads all of it two minutes late

    lagging = wall_engine(model)
    lagging.arrival.start(("tele", 0), 0)
    lagging.arrival.log_end(("tele", 0), len(messages), as_of_ms=wall_after)
    out = lagging.process_batch(messages[:25], now_ms=wall_after)
    rest = lagging.process_batch(messages[25:], now_ms=wall_after)
    assert out.counts["late"] == rest.counts["late"] == 0
    scored = out.counts["scored"] + out.counts["warming_up"] + rest.counts["scored"] + \
        rest.counts["warming_up"]
    assert scored == len(readings)  # caught up with the log as of now: every slot was due

    on_time = wall_engine(model)  # the worker that kept up: each read as it arrived
    keys = []
    for m, r in zip(messages, readings, strict=True):
        keys += [a.key for _, a in on_time.process_batch([m], now_ms=r.ts_ms + 100).anomalies]
    keys += [a.key for _, a in on_time.tick(now_ms=wall_after).anomalies]
    assert f"inf/p/{T0 + 30 * S}" in keys
    assert sorted(a.key for _, a in out.anomalies + rest.anomalies) == sorted(keys)


def test_a_point_that_reached_kafka_after_its_slot_was_due_is_still_late(model: Model) -> None:
    readings = generate_fleet(["p"], 20, T0, S, seed=9).readings
    e = wall_engine(model)
    e.arrival.start(("tele", 0), 0)
    e.arrival.log_end(("tele", 0), 20, as_of_ms=readings[-1].ts_ms + 100)
    e.process_batch(arrived(readings, 0, readings[-1].ts_ms + 100), now_ms=readings[-1].ts_ms + 200)
    # a re-sent old point reaches the broker ten seconds after its slot was due
    old = readings[5]
    late_arrival = old.ts_ms + S + 2_000 + 10_000
    out = e.process_batch(arrived([Reading("p", old.ts_ms + 1, old.signals)], 20, late_arrival),
                          now_ms=late_arrival + 60_000)
    assert out.counts["late"] == 1 and out.counts["scored"] == 0
