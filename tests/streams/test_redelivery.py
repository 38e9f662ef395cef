"""After a crash the input is read again from the last committed offset: what the stored state
already took is recognised by the partition's checkpoint — not late, not published twice."""

from __future__ import annotations

from typing import Any

from streams.checkpoint import checkpoint_key
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet

T0 = 1_767_225_600_000
S = 1_000


def engine(model: Model, store: dict[str, Any]) -> Engine:
    cfg = InferenceConfig("inf", "m", "tele", clock="event", idle_timeout_ms=1_000)
    return Engine([AssetScorer(cfg, model)], load=store.get, partitions=1)


def messages(readings: list[Reading]) -> list[Message]:
    return [Message("tele", 0, i, r.asset_id.encode(), encode_telemetry([r]))
            for i, r in enumerate(readings)]


def run(e: Engine, store: dict[str, Any], batch: list[Message], acked: bool) -> list[str]:
    """One batch; its snapshots stored, and its checkpoint too if its output was acknowledged."""
    out = e.process_batch(batch, now_ms=0)
    store.update({k: snap for k, (_, snap) in out.snapshots.items()})
    if acked:
        store[checkpoint_key("tele", 0)] = batch[-1].offset + 1
    return [a.key for _, a in out.anomalies]


def fleet() -> list[Reading]:
    return generate_fleet(["p"], 40, T0, S, seed=9, faults=[Fault("p", "spike", 30, 1)]).readings


def test_records_the_stored_state_took_are_duplicates_when_read_again_not_late(model: Model) -> None:
    store: dict[str, Any] = {}
    msgs = messages(fleet())
    run(engine(model, store), store, msgs, acked=True)
    again = engine(model, store).process_batch(msgs[10:], now_ms=0)  # from an older commit
    assert again.counts["late"] == 0 and not again.late
    assert again.counts["duplicate"] == 30 and again.counts["scored"] == 0


def test_a_record_past_the_checkpoint_for_a_finalised_slot_is_still_late(model: Model) -> None:
    store: dict[str, Any] = {}
    msgs = messages(fleet())
    run(engine(model, store), store, msgs, acked=True)
    old = Reading("p", T0 + 5 * S + 1, {s: 1.0 for s in SIGNALS})
    out = engine(model, store).process_batch(
        [Message("tele", 0, 40, b"p", encode_telemetry([old]))], now_ms=0)
    assert out.counts["late"] == 1


def test_anomalies_of_an_acknowledged_batch_are_not_published_again(model: Model) -> None:
    store: dict[str, Any] = {}
    msgs = messages(fleet())
    first = run(engine(model, store), store, msgs, acked=True)
    assert f"inf/p/{T0 + 30 * S}" in first
    restored = engine(model, store)
    more = Reading("p", T0 + 40 * S, fleet()[-1].signals)
    out = restored.process_batch([Message("tele", 0, 40, b"p", encode_telemetry([more]))], now_ms=0)
    assert out.counts["republished"] == 0 and not [a for _, a in out.anomalies if a.key in first]


def test_anomalies_of_a_batch_the_crash_cut_short_are_published_again(model: Model) -> None:
    store: dict[str, Any] = {}
    msgs = messages(fleet())
    first = run(engine(model, store), store, msgs, acked=False)  # state stored, output unsure
    restored = engine(model, store)
    out = restored.process_batch(msgs[-1:], now_ms=0)
    assert sorted(a.key for _, a in out.anomalies) == sorted(first) and out.counts["republished"]


def test_a_ticks_anomalies_are_published_again_unless_the_glue_acknowledged_them(
    model: Model,
) -> None:
    readings = fleet()[:31]  # the spike is the last point: the idle tick finalises it
    for acknowledged in (False, True):
        store: dict[str, Any] = {}
        e = engine(model, store)
        run(e, store, messages(readings), acked=True)
        ticked = e.tick(now_ms=10_000)
        assert [a.key for _, a in ticked.anomalies] == [f"inf/p/{T0 + 30 * S}"]
        store.update({k: snap for k, (_, snap) in ticked.snapshots.items()})
        if acknowledged:
            store.update({k: snap for k, (_, snap) in
                          e.acknowledge(a for _, a in ticked.anomalies).items()})
        restored = engine(model, store).process_batch(messages(readings)[-1:], now_ms=10_000)
        assert restored.counts["republished"] == (0 if acknowledged else 1)


# --- a state no record will touch again: adopted by the new owner (Engine.adopt)


def engine_owning(model: Model, store: dict[str, Any]) -> Engine:
    e = engine(model, store)
    e.owned = {0}
    return e


def test_a_ticks_lost_anomaly_is_published_again_though_no_record_is_read_again(
    model: Model,
) -> None:
    """The crash came after the commit covered the asset's last record: no record of it is
    read again, so only adopting its stored state publishes what the tick's output lost."""
    readings = fleet()[:31]  # the spike is the last point: the idle tick finalises it
    store: dict[str, Any] = {}
    e = engine_owning(model, store)
    run(e, store, messages(readings), acked=True)
    ticked = e.tick(now_ms=10_000)
    store.update({k: snap for k, (_, snap) in ticked.snapshots.items()})  # the anomaly: lost
    restored = engine_owning(model, store)
    assert restored.tick(now_ms=20_000).anomalies == []  # nothing touches the asset
    assert restored.adopt(list(store), now_ms=20_000) == 1
    again = restored.tick(now_ms=20_000)
    assert [a.key for _, a in again.anomalies] == [f"inf/p/{T0 + 30 * S}"]
    assert again.counts["republished"] == 1


def test_an_adopted_assets_pending_slots_are_finalised_once_the_backlog_before_it_is_read(
    model: Model,
) -> None:
    """The owner crashed before its idle tick: the new one finalises the silent asset's last
    slots, by the idle rule counted on the arrival clock from the adoption, so a backlog
    still to read cannot make the asset look idle."""
    readings = fleet()[:31]
    store: dict[str, Any] = {}
    run(engine_owning(model, store), store, messages(readings), acked=True)  # no tick: killed
    restored = engine_owning(model, store)
    tp = ("tele", 0)
    restored.arrival.start(tp, 31)
    restored.arrival.log_end(tp, 40, as_of_ms=20_000)  # a backlog of other assets' records
    assert restored.adopt(list(store), now_ms=20_000) == 1
    assert restored.tick(now_ms=25_000).anomalies == []  # the backlog is not read yet
    for offset in range(31, 40):
        restored.arrival.read(tp, offset, timestamp_ms=19_000, wall_ms=25_000)
    assert restored.tick(now_ms=25_000).anomalies == []  # read to the log's end as of 20 s: idle 0 s
    restored.arrival.log_end(tp, 40, as_of_ms=21_500)  # nothing new by 21.5 s: idle 1.5 s
    out = restored.tick(now_ms=25_100)
    assert [a.key for _, a in out.anomalies] == [f"inf/p/{T0 + 30 * S}"]


def test_adoption_skips_what_is_not_this_workers_to_score(model: Model) -> None:
    store: dict[str, Any] = {}
    run(engine_owning(model, store), store, messages(fleet()), acked=True)
    elsewhere = engine(model, store)  # partition 0 is not owned here
    assert elsewhere.adopt(list(store), now_ms=0) == 0
    other = engine_owning(model, {**store, "other/p": store["inf/p"]})
    assert other.adopt(["other/p", "#offset/tele/0", "inf/q"], now_ms=0) == 0  # no such states
    held = engine_owning(model, store)
    held.process_batch(messages(fleet())[-1:], now_ms=0)  # touched: held already
    assert held.adopt(list(store), now_ms=0) == 0
