"""The engine under the control plane: epochs, pre-fill holds, one inference's fault isolated."""

from __future__ import annotations

from typing import Any

import pytest

from streams.checkpoint import checkpoint_key
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import Fault, generate_fleet

T0 = 1_767_225_600_000
S = 1_000


def scorer(model: Model, epoch: int = 1, inference: str = "inf", **cfg: Any) -> AssetScorer:
    config = InferenceConfig(inference, "m", "tele", **{"clock": "event", "idle_timeout_ms": 1_000,
                                                        **cfg})
    return AssetScorer(config, model, epoch)


def msg(r: Reading, offset: int = 0) -> Message:
    return Message("tele", 0, offset, r.asset_id.encode(), encode_telemetry([r]))


def pump(points: int = 80, fault_at: int = 50) -> list[Reading]:
    return generate_fleet(["p"], points, T0, S, seed=9,
                          faults=[Fault("p", "spike", fault_at, 1)]).readings


def run(e: Engine, readings: list[Reading]) -> list[str]:
    keys = [a.key for _, a in e.process_batch([msg(r) for r in readings]).anomalies]
    return keys + [a.key for _, a in e.tick(now_ms=10**13).anomalies]


def test_an_engine_serves_its_topics_with_no_inference_active(model: Model) -> None:
    e = Engine([], load=lambda k: None, partitions=1, topics=["tele"])
    assert e.topics == ["tele", "tele.by-asset"]
    out = e.process_batch([msg(r) for r in pump(5)])
    assert out.counts["received"] == 5 and out.counts["scored"] == 0 and not e.states


def test_an_inference_on_a_topic_the_engine_does_not_serve_is_refused(model: Model) -> None:
    e = Engine([], load=lambda k: None, partitions=1, topics=["other"])
    with pytest.raises(ValueError, match="does not serve"):
        e.set_scorers([scorer(model)])


def test_a_prefilled_window_scores_from_the_first_point_at_the_start(model: Model) -> None:
    readings = pump(80)
    start = readings[40].ts_ms
    e = Engine([], load=lambda k: None, partitions=1, topics=["tele"])
    assert len(e.set_scorers([scorer(model, start_ms=start)])) == 1
    e.hold("inf", [0])
    live = e.process_batch([msg(r) for r in readings[40:]])
    assert live.counts["scored"] == 0, "nothing is finalised while the window is pre-filled"
    history = e.prefill("inf", 0, readings[:40])
    assert history.counts["prefilled"] == 40 and history.counts["scored"] == 0
    e.release("inf", 0)
    out = e.tick(now_ms=10**13)
    assert out.counts["warming_up"] == 40, "history only fills the window"
    assert out.counts["scored"] == 40, "every point from the start on is scored, none warms up"
    reference = Engine([scorer(model, start_ms=start)], load=lambda k: None, partitions=1)
    assert [a.key for _, a in out.anomalies] == run(reference, readings)


def test_history_the_live_stream_already_delivered_is_taken_once(model: Model) -> None:
    readings = pump(60)
    e = Engine([], load=lambda k: None, partitions=1, topics=["tele"])
    e.set_scorers([scorer(model)])
    e.hold("inf", [0])
    e.process_batch([msg(r) for r in readings[30:]])
    assert e.prefill("inf", 0, readings).counts["prefilled"] == 30
    e.release("inf", 0)
    assert e.tick(now_ms=10**13).counts["scored"] + 8 == 60


def test_a_new_epoch_starts_afresh_and_ignores_the_stored_state_of_the_last(model: Model) -> None:
    store: dict[str, Any] = {}
    e = Engine([], load=store.get, partitions=1, topics=["tele"])
    e.set_scorers([scorer(model, epoch=1)])
    out = e.process_batch([msg(r) for r in pump(20)])
    store.update({k: snap for k, (_, snap) in out.snapshots.items()})
    assert store["inf/p"]["epoch"] == 1 and e.states
    assert [s.epoch for s in e.set_scorers([scorer(model, epoch=2)])] == [2]
    assert not e.states, "the old epoch's state is dropped from memory"
    later = [Reading("p", T0 + (100 + i) * S, dict(r.signals)) for i, r in enumerate(pump(3))]
    out = e.process_batch([msg(r) for r in later])
    assert out.snapshots["inf/p"][1]["epoch"] == 2
    assert out.counts["late"] == 0 and out.counts["duplicate"] == 0


def test_an_unchanged_scorer_set_keeps_its_state(model: Model) -> None:
    e = Engine([], load=lambda k: None, partitions=1, topics=["tele"])
    e.set_scorers([scorer(model)])
    e.process_batch([msg(r) for r in pump(10)])
    assert e.set_scorers([scorer(model)]) == [] and "inf/p" in e.states


def test_a_stopped_inference_stops_taking_points(model: Model) -> None:
    e = Engine([], load=lambda k: None, partitions=1, topics=["tele"])
    e.set_scorers([scorer(model)])
    e.process_batch([msg(r) for r in pump(10)])
    e.set_scorers([])
    out = e.process_batch([msg(r) for r in pump(20)[10:]])
    assert not e.states and out.counts["scored"] == out.counts["warming_up"] == 0


def test_one_inference_failing_leaves_the_others_scoring(model: Model) -> None:
    class Broken(AssetScorer):
        def accept(self, state: Any, reading: Reading) -> Any:
            raise RuntimeError("detector exploded")

    broken = Broken(scorer(model, inference="bad").inference, model, 1)
    e = Engine([broken, scorer(model, inference="good")], load=lambda k: None, partitions=1)
    out = e.process_batch([msg(r) for r in pump(30)])
    assert out.failures == {"bad": "RuntimeError: detector exploded"}
    assert out.by_inference[("good", "scored")] > 0
    assert not any(k.startswith("bad/") for k in out.snapshots)


def test_progress_tells_assets_warm_up_and_the_newest_finalised_slot(model: Model) -> None:
    e = Engine([scorer(model)], load=lambda k: None, partitions=1)
    readings = pump(30)
    e.process_batch([msg(r) for r in readings])
    e.tick(now_ms=10**13)
    p = e.progress()["inf"]
    assert (p.assets, p.warming_up, p.scored) == (1, 0, 22)
    assert p.last_finalised_ms == readings[-1].ts_ms


def test_alerts_open_at_the_first_anomaly_and_resolve_once_x_points_pass_with_none(
        model: Model) -> None:
    from streams.alerts import AlertConfig

    store: dict[str, Any] = {}
    alert = AlertConfig("high", correlation_points=3)
    cfg = {"alerts": (alert,), "hooks": ("ops",)}
    readings = pump(80, fault_at=50)
    e = Engine([scorer(model, **cfg)], load=store.get, partitions=1)
    out = e.process_batch([msg(r) for r in readings[:52]])
    store.update({k: snap for k, (_, snap) in out.snapshots.items()})
    store[checkpoint_key("tele", 0)] = 52  # the glue, once the broker acknowledged it
    opened = [(a.state, a.notify, hooks) for _, a, hooks in out.alerts]
    assert opened[0] == ("open", True, ("ops",))
    # a restarted engine resumes the open group from the snapshot: no second "open"
    again = Engine([scorer(model, **cfg)], load=store.get, partitions=1)
    rest = again.process_batch([msg(r) for r in readings[52:]])
    rest_alerts = [a for _, a, _ in rest.alerts] + [a for _, a, _ in again.tick(10**13).alerts]
    assert [a.state for a in rest_alerts if a.notify] == ["resolved"]
    assert {a.alert_id for a in rest_alerts} == {out.alerts[0][1].alert_id}


def test_an_alert_record_not_proved_durable_is_published_again_after_a_restart(
        model: Model) -> None:
    """The crash window: the state (with its open group) reached the changelog, the alert
    record maybe not, and no checkpoint vouches for it. The group's latest record is published
    again, once (its notification id is recognised by the hook outbox: no hook call twice)."""
    from streams.alerts import AlertConfig

    store: dict[str, Any] = {}
    cfg = {"alerts": (AlertConfig("high", correlation_points=3),), "hooks": ("ops",)}
    readings = pump(80, fault_at=50)
    e = Engine([scorer(model, **cfg)], load=store.get, partitions=1)
    out = e.process_batch([msg(r) for r in readings[:52]])
    store.update({k: snap for k, (_, snap) in out.snapshots.items()})  # no checkpoint: the crash
    latest = out.alerts[-1][1]
    again = Engine([scorer(model, **cfg)], load=store.get, partitions=1)
    first = again.process_batch([msg(readings[52])])
    assert [(a.alert_id, a.state, a.anomaly_count) for _, a, _ in first.alerts][:1] == \
        [(latest.alert_id, latest.state, latest.anomaly_count)]
    assert first.counts["republished_alerts"] == 1
    assert again.process_batch([msg(readings[53])]).counts["republished_alerts"] == 0


def test_inference_scope_alerts_leave_the_engine_as_a_feed_one_correlation_groups(
        model: Model) -> None:
    from streams.alerts import AlertConfig
    from streams.correlation import InferenceCorrelation, Progress
    from streams.partitioning import home_partition

    plant = AlertConfig("plant", correlation_points=5, scope="inference")
    assets = ["pump-1", "pump-3"]  # homes 3 and 0 of 4 partitions
    readings = sorted(generate_fleet(assets, 80, T0, S, seed=9, faults=[
        Fault("pump-1", "spike", 50, 1), Fault("pump-3", "spike", 52, 1)]).readings,
        key=lambda r: (r.ts_ms, r.asset_id))
    e = Engine([scorer(model, alerts=(plant,))], load=lambda k: None, partitions=4)
    e.owned = {0, 1, 2, 3}
    homes = {a: home_partition(a, 4) for a in assets}
    out = e.process_batch([Message("tele", homes[r.asset_id], i, r.asset_id.encode(),
                                   encode_telemetry([r])) for i, r in enumerate(readings)])
    idle = e.tick(now_ms=10**13)
    feed = out.correlation + idle.correlation
    assert not out.alerts and not idle.alerts, "no asset-scope grouping for an inference-scope config"
    progress = {item.partition: item.watermark_ms for _, item in feed if isinstance(item, Progress)}
    assert progress == {0: readings[-1].ts_ms, 1: None, 2: None, 3: readings[-1].ts_ms}
    c = InferenceCorrelation("inf", model.interval_ms, (plant,), partitions=4)
    alerts = [a for _, item in feed
              for a in (c.progress(item.partition, item.watermark_ms)
                        if isinstance(item, Progress) else c.add(item))]
    assert [a.state for a in alerts if a.notify] == ["open", "resolved"]
    assert set(alerts[-1].assets) == set(assets) and len({a.alert_id for a in alerts}) == 1


def test_an_alert_open_when_the_inference_was_paused_resolves_after_the_restart(
        model: Model) -> None:
    from streams.alerts import AlertConfig

    store: dict[str, Any] = {}
    cfg = {"alerts": (AlertConfig("high", correlation_points=3),)}
    readings = pump(120, fault_at=50)
    e = Engine([scorer(model, epoch=1, **cfg)], load=store.get, partitions=1)
    out = e.process_batch([msg(r) for r in readings[:52]])
    store.update({k: snap for k, (_, snap) in out.snapshots.items()})
    (opened,) = [a for _, a, _ in out.alerts if a.state == "open"]
    # paused, restarted: a new epoch, whose windows start afresh from later points
    again = Engine([scorer(model, epoch=2, **cfg)], load=store.get, partitions=1)
    rest = again.process_batch([msg(r) for r in readings[90:]])
    resolved = [a for _, a, _ in rest.alerts if a.state == "resolved"]
    assert [a.alert_id for a in resolved] == [opened.alert_id] and resolved[0].notify


def test_an_asset_with_nothing_finalised_yet_holds_its_partition_back(model: Model) -> None:
    """Its first point may still be anomalous: the partition reports the slot before it."""
    from streams.alerts import AlertConfig
    from streams.correlation import Progress

    plant = AlertConfig("plant", correlation_points=5, scope="inference")
    e = Engine([scorer(model, alerts=(plant,))], load=lambda k: None, partitions=1)
    e.owned = {0}
    first = pump(3)[0]
    e.process_batch([msg(first)], now_ms=5_000)
    out = e.tick(now_ms=5_000)  # not idle yet: the point waits for its slot to be due
    assert [item for _, item in out.correlation] == [Progress(0, first.ts_ms - S)]


def test_the_engine_remembers_where_the_live_stream_began_on_each_partition(model: Model) -> None:
    """Pre-fill reads history up to there when the group's committed offset is unknown."""
    e = Engine([scorer(model)], load=lambda k: None, partitions=1)
    readings = pump(3)
    e.process_batch([msg(readings[0], offset=5), msg(readings[1], offset=6)])
    e.process_batch([msg(readings[2], offset=7)])
    assert e.first_offsets == {("tele", 0): 5} and e.positions == {("tele", 0): 8}
    e.drop_partitions([0])
    assert e.first_offsets == {} and e.positions == {}


def test_on_the_event_clock_a_new_epoch_resumes_each_asset_after_its_last_point(
        model: Model) -> None:
    """A restart of an event-clock inference scores what came after the pause, in the feed's
    own time: the points the earlier epoch took fill the window, the rest is scored, each once."""
    store: dict[str, Any] = {}
    readings = pump(120)
    e = Engine([scorer(model, epoch=1)], load=store.get, partitions=1)
    first = e.process_batch([msg(r) for r in readings[:60]])
    store.update({k: snap for k, (_, snap) in first.snapshots.items()})
    taken = store["inf/p"]["last_ts_ms"]
    assert taken is not None and first.counts["scored"] > 0
    # paused, then restarted: the worker holds the partition and pre-fills it from the whole
    # topic (what came while it was paused included), then goes on live
    e.set_scorers([scorer(model, epoch=2)])
    e.hold("inf", [0])
    history = e.prefill("inf", 0, readings[:100])
    e.release("inf", 0)
    out = e.tick(now_ms=10**13)
    live = e.process_batch([msg(r) for r in readings[100:]])
    after = [r.ts_ms for r in readings if r.ts_ms > taken]
    lookback = 8 + 5 + 2  # window, fill limit, 2 slots (AssetScorer.history_from_ms)
    assert history.counts["prefilled"] == 100 - (120 - len(after)) + lookback, \
        "a window's worth before the resume point, then the rest"
    assert out.counts["warming_up"] == lookback
    assert out.counts["scored"] + live.counts["scored"] + e.tick(now_ms=10**13).counts["scored"] \
        == len(after), "every point after the last one taken is scored, none twice"


def test_on_the_wall_clock_a_new_epoch_scores_from_the_inferences_start(model: Model) -> None:
    store: dict[str, Any] = {}
    readings = pump(60)
    e = Engine([scorer(model, epoch=1, clock="wall")], load=store.get, partitions=1)
    out = e.process_batch([msg(r) for r in readings[:30]], now_ms=10**13)
    store.update({k: snap for k, (_, snap) in out.snapshots.items()})
    restarted = scorer(model, epoch=2, clock="wall", start_ms=readings[50].ts_ms)
    e.set_scorers([restarted])
    out = e.process_batch([msg(r) for r in readings[30:]], now_ms=10**13)
    assert out.counts["scored"] == 10 and out.counts["warming_up"] == 20
