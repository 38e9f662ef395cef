"""Worker metrics count what the engine returns, on their own registry."""

from __future__ import annotations

from collections import Counter

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
