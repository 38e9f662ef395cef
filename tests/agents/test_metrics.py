"""Worker metrics count what the engine returns, on their own registry."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry

from agents.metrics import WorkerMetrics
from streams.engine import BatchOutput
from streams.records import Anomaly
from streams.watermark import Gap


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_a_batch_is_counted_per_inference_and_outcome() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    anomaly = Anomaly("inf", "p1", 1_000, "m", 1, 5.0, 0.9, 70, 0.3)
    out = BatchOutput(
        anomalies=[(0, anomaly)],
        gaps=[(0, "inf", "inf/p1", Gap(0, 10_000, 10))],
        counts=Counter({"received": 12, "invalid": 2, "forwarded": 3}),
        by_inference=Counter({("inf", "scored"): 7, ("inf", "late"): 1}),
    )
    metrics.observe(out, now_ms=3_500, batch_seconds=0.01)
    assert value(registry, "assetwatch_points_received_total") == 10
    assert value(registry, "assetwatch_messages_total", outcome="invalid") == 2
    assert value(registry, "assetwatch_points_forwarded_total") == 3
    assert value(registry, "assetwatch_points_total", inference="inf", outcome="scored") == 7
    assert value(registry, "assetwatch_points_total", inference="inf", outcome="late") == 1
    assert value(registry, "assetwatch_gap_points_total", inference="inf") == 10
    assert value(registry, "assetwatch_anomalies_total", inference="inf") == 1
    assert value(registry, "assetwatch_event_to_published_seconds_sum", inference="inf") == 2.5
    assert value(registry, "assetwatch_batch_duration_seconds_count") == 1


def test_metrics_live_on_the_registry_they_are_given() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    WorkerMetrics(a).points_received.inc(5)
    WorkerMetrics(b)
    assert value(a, "assetwatch_points_received_total") == 5
    assert value(b, "assetwatch_points_received_total") == 0


def scorer_for(inference: str, clock: str, delay_ms: int = 0) -> Any:
    import numpy as np

    from streams.inference import InferenceConfig
    from streams.model import ModelParams, fit_model
    from streams.scoring import AssetScorer

    model = fit_model(np.random.default_rng(0).normal(size=(300, 1)),
                      ModelParams(model_id="m", signals=("v",), window_size=4))
    return AssetScorer(InferenceConfig(inference, "m", "tele", clock=clock,  # type: ignore[arg-type]
                                       delay_ms=delay_ms), model)


def test_due_to_published_is_measured_from_the_due_time_of_the_inference_clock() -> None:
    from streams.engine import Engine

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    engine = Engine([scorer_for("live", "wall", delay_ms=500), scorer_for("hist", "event")],
                    load=lambda k: None, partitions=1)
    out = BatchOutput(anomalies=[(0, Anomaly("live", "p1", 10_000, "m", 1, 5.0, 0.9, 70, 0.3)),
                                 (0, Anomaly("hist", "p1", 10_000, "m", 1, 5.0, 0.9, 70, 0.3))])
    metrics.observe(out, now_ms=12_000, engine=engine, finalised_at_ms=11_900)
    # wall: slot 10 s + Δ 1 s + D 0.5 s is due at 11.5 s; event: due when the batch began
    assert value(registry, "assetwatch_due_to_published_seconds_sum", inference="live") == 0.5
    assert value(registry, "assetwatch_due_to_published_seconds_sum", inference="hist") == 0.1
    assert value(registry, "assetwatch_event_to_published_seconds_sum", inference="hist") == 2.0


def test_watermark_lag_is_now_minus_the_due_time_of_the_newest_finalised_slot() -> None:
    from streams.codec import encode_telemetry
    from streams.engine import Engine, Message
    from streams.records import Reading

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    engine = Engine([scorer_for("live", "wall")], load=lambda k: None, partitions=1)
    t0 = 1_767_225_600_000
    readings = {"a": t0 + 20_000, "b": t0 + 5_000}
    out = engine.process_batch(
        [Message("tele", 0, i, k.encode(), encode_telemetry([Reading(k, ts, {"v": 0.0})]))
         for i, (k, ts) in enumerate(readings.items())], now_ms=t0 + 30_000)
    assert not out.rejections
    metrics.observe_engine(engine, now_ms=t0 + 31_000)
    # the newest finalised slot is 29 s (due at 30 s, Δ = 1 s): lag 1 s
    assert value(registry, "assetwatch_watermark_lag_seconds", inference="live") == 1.0
    assert value(registry, "assetwatch_assets") == 2
    engine.drop_partitions([0])
    metrics.observe_engine(engine, now_ms=t0 + 32_000)
    assert registry.get_sample_value("assetwatch_watermark_lag_seconds", {"inference": "live"}) is None


def test_a_tracked_inference_shows_zero_series_and_defaults_to_active() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.set_inference_status("paused", "UserPaused")
    metrics.track_inference("paused")
    metrics.track_inference("fresh")
    assert registry.get_sample_value("assetwatch_alerts_total", {"inference": "fresh", "state": "open"}) == 0
    assert registry.get_sample_value("assetwatch_anomalies_total", {"inference": "fresh"}) == 0
    status = {(inf, s): registry.get_sample_value("assetwatch_inference_status",
                                                  {"inference": inf, "status": s})
              for inf in ("paused", "fresh") for s in ("Active", "UserPaused")}
    assert status == {("paused", "Active"): 0, ("paused", "UserPaused"): 1,
                      ("fresh", "Active"): 1, ("fresh", "UserPaused"): 0}


def test_a_deleted_inference_loses_its_status_and_an_unknown_status_is_refused() -> None:
    import pytest

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.set_inference_status("x", "SystemPaused")
    metrics.set_inference_status("x", "Deleted")
    metrics.track_inference("x")  # not brought back as Active
    assert registry.get_sample_value("assetwatch_inference_status",
                                     {"inference": "x", "status": "Active"}) is None
    with pytest.raises(ValueError, match="unknown inference status"):
        metrics.set_inference_status("x", "Sleeping")


def test_alerts_are_counted_by_inference_and_state() -> None:
    from streams.alerts import Alert

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    alerts = [Alert("a", "cfg", "inf", ("p",), 0, 0, 1, 0.9, (), state, True)
              for state in ("open", "updated", "updated", "resolved")]
    metrics.observe_alerts(alerts)
    assert value(registry, "assetwatch_alerts_total", inference="inf", state="updated") == 2
    assert value(registry, "assetwatch_alerts_total", inference="inf", state="resolved") == 1


def test_consumer_lag_follows_the_assignment() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.set_consumer_lag({("tele", 0): 5, ("tele", 1): 0})
    metrics.set_consumer_lag({("tele", 1): 3})
    assert value(registry, "assetwatch_consumer_lag_messages", topic="tele", partition="1") == 3
    assert registry.get_sample_value("assetwatch_consumer_lag_messages",
                                     {"topic": "tele", "partition": "0"}) is None
