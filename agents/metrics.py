"""Prometheus metrics of a worker, on an injectable registry (never the global default).

Glue only: it counts what the pure engine returns (:class:`streams.engine.BatchOutput`).
Labels are bounded: per inference and outcome, never per asset. The reference of every
metric is in ``docs/metrics.md``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.engine import BatchOutput

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    """The metrics one worker exposes at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "assetwatch_messages_total", "Telemetry messages taken, by outcome at the edge.",
            ["outcome"], registry=registry)
        self.points_received = Counter(
            "assetwatch_points_received_total", "Readings decoded from telemetry messages.",
            registry=registry)
        self.points_forwarded = Counter(
            "assetwatch_points_forwarded_total",
            "Readings that arrived off their asset's home partition and were forwarded to it.",
            registry=registry)
        self.points = Counter(
            "assetwatch_points_total",
            "Points of an inference by outcome: scored, warming_up, late, duplicate, filled, "
            "incomplete, gap.", ["inference", "outcome"], registry=registry)
        self.gap_points = Counter(
            "assetwatch_gap_points_total", "Missing slots reported as gaps (not filled).",
            ["inference"], registry=registry)
        self.anomalies = Counter(
            "assetwatch_anomalies_total", "Anomalies published.", ["inference"], registry=registry)
        self.event_to_published = Histogram(
            "assetwatch_event_to_published_seconds",
            "From an anomalous point's own timestamp to its publication (wall clock).",
            ["inference"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.batch_seconds = Histogram(
            "assetwatch_batch_duration_seconds", "Time to process one batch of messages.",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.assets = Gauge(
            "assetwatch_assets", "Assets whose state this worker holds.", registry=registry)

    def observe(self, out: BatchOutput, now_ms: int, batch_seconds: float | None = None) -> None:
        """Count what one batch (or tick) produced."""
        counts = out.counts
        invalid = counts.get("invalid", 0)
        if invalid:
            self.messages.labels("invalid").inc(invalid)
        received = counts.get("received", 0) - invalid
        if received:
            self.points_received.inc(received)
        if counts.get("forwarded"):
            self.points_forwarded.inc(counts["forwarded"])
        for (inference, outcome), n in out.by_inference.items():
            self.points.labels(inference, outcome).inc(n)
        for _, inference, _, gap in out.gaps:
            self.gap_points.labels(inference).inc(gap.points)
        for _, anomaly in out.anomalies:
            self.anomalies.labels(anomaly.inference_id).inc()
            self.event_to_published.labels(anomaly.inference_id).observe(
                max(now_ms - anomaly.ts_ms, 0) / 1000)
        if batch_seconds is not None:
            self.batch_seconds.observe(batch_seconds)
