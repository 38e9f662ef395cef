"""Prometheus metrics of a worker, on an injectable registry (never the global default).

Glue only: it counts what the pure engine returns (:class:`streams.engine.BatchOutput`), reads
the engine's per-asset watermarks and the Faust consumer's offsets when Prometheus scrapes,
and records what the control and alert glue tell it (:meth:`WorkerMetrics.set_inference_status`,
:meth:`WorkerMetrics.observe_alerts`). Labels are bounded: per inference, outcome, state and
topic partition, never per asset. The reference of every metric is in ``docs/metrics.md``.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = WorkerMetrics(registry)
>>> metrics.set_inference_status("line-3", "UserPaused")
>>> [registry.get_sample_value("assetwatch_inference_status", {"inference": "line-3", "status": s})
...  for s in ("Active", "UserPaused", "SystemPaused")]
[0.0, 1.0, 0.0]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.alerts import Alert, AlertState
from streams.engine import BatchOutput, Engine
from streams.records import Anomaly
from streams.scoring import AssetScorer

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: The statuses of a streaming inference (SPEC §5.4, ``schemas/status-event.v1.json``);
#: ``Deleted`` is not a status the gauge shows: a deleted inference's series are removed.
INFERENCE_STATUSES: Final = ("Active", "UserPaused", "SystemPaused")
DELETED: Final = "Deleted"
ALERT_STATES: Final[tuple[str, ...]] = get_args(AlertState)
#: outcomes of ``assetwatch_points_total`` shown as zero from the start, so rates exist
_INITIAL_OUTCOMES: Final = ("scored", "warming_up", "late", "duplicate")
#: how long a scrape waits in all for the broker (end offsets, then positions) before it
#: falls back to what the consumer last saw: well inside Prometheus' 10 s scrape timeout
HIGHWATER_TIMEOUT_S: Final = 2.0


def due_wall_ms(scorer: AssetScorer, ts_ms: int, finalised_at_ms: int) -> int:
    """When the slot of a point at ``ts_ms`` fell due, on the wall clock.

    A ``wall`` inference's slot is due at ``slot + Δ + D`` on the wall clock itself; an
    ``event`` inference's slot falls due when the batch (or tick) that moved its event clock
    past that time was taken, at ``finalised_at_ms``.

    >>> import numpy as np
    >>> from streams.inference import InferenceConfig
    >>> from streams.model import ModelParams, fit_model
    >>> model = fit_model(np.random.default_rng(0).normal(size=(300, 1)),
    ...                   ModelParams(model_id="m", signals=("v",), window_size=4))
    >>> wall = AssetScorer(InferenceConfig("i", "m", "t", delay_ms=500), model)
    >>> due_wall_ms(wall, 10_250, finalised_at_ms=99_999)  # slot 10 s + Δ 1 s + D 0.5 s
    11500
    >>> event = AssetScorer(InferenceConfig("i", "m", "t", clock="event"), model)
    >>> due_wall_ms(event, 10_250, finalised_at_ms=99_999)
    99999
    """
    if scorer.inference.clock == "wall":
        slots = scorer.slots
        return slots.due_at_ms(slots.slot_of(ts_ms))
    return finalised_at_ms


def engine_scorers(engine: Engine) -> dict[str, AssetScorer]:
    """The engine's scorers by inference id."""
    return {s.inference.inference_id: s for scorers in engine.scorers_by_topic.values()
            for s in scorers}


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
        self.hole_records = Counter(
            "assetwatch_hole_records_total",
            "Records the live stream skipped past the stored state, read back from the broker "
            "(docs/state-and-recovery.md).", ["topic"], registry=registry)
        self.points = Counter(
            "assetwatch_points_total",
            "Points of an inference by outcome: scored, warming_up, late, duplicate, filled, "
            "incomplete, gap.", ["inference", "outcome"], registry=registry)
        self.gap_points = Counter(
            "assetwatch_gap_points_total", "Missing slots reported as gaps (not filled).",
            ["inference"], registry=registry)
        self.anomalies = Counter(
            "assetwatch_anomalies_total", "Anomalies published.", ["inference"], registry=registry)
        self.replay_points = Gauge(
            "assetwatch_replay_points",
            "The latest replay of an inference on the controller's worker: points done and in "
            "total (docs/control.md, Replay).", ["inference", "of"], registry=registry)
        self.replay_running = Gauge(
            "assetwatch_replay_running",
            "1 while a replay of the inference is Accepted or Running, else 0.", ["inference"],
            registry=registry)
        self.event_to_published = Histogram(
            "assetwatch_event_to_published_seconds",
            "From an anomalous point's own timestamp to its publication (wall clock).",
            ["inference"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.due_to_published = Histogram(
            "assetwatch_due_to_published_seconds",
            "From the moment an anomalous point's slot fell due to its publication (wall clock).",
            ["inference"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.batch_seconds = Histogram(
            "assetwatch_batch_duration_seconds", "Time to process one batch of messages.",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.assets = Gauge(
            "assetwatch_assets", "Assets whose state this worker holds.", registry=registry)
        self.watermark_lag = Gauge(
            "assetwatch_watermark_lag_seconds",
            "Wall clock now minus the due time of the newest slot finalised, per inference, "
            "over the assets this worker holds.", ["inference"], registry=registry)
        self.consumer_lag = Gauge(
            "assetwatch_consumer_lag_messages",
            "Records in an assigned input partition not yet committed: end offset minus "
            "committed offset (or the consumer's position before the first commit).",
            ["topic", "partition"], registry=registry)
        self.inference_status = Gauge(
            "assetwatch_inference_status",
            "1 for an inference's current status (Active, UserPaused, SystemPaused), 0 for the "
            "others.", ["inference", "status"], registry=registry)
        self.alerts = Counter(
            "assetwatch_alerts_total", "Alert records published, by state.",
            ["inference", "state"], registry=registry)
        for outcome in ("taken", "invalid"):
            self.messages.labels(outcome)
        self._tracked: set[str] = set()
        self._with_status: set[str] = set()
        self._lag_labels: set[tuple[str, str]] = set()
        self._watermark_labels: set[str] = set()

    # ------------------------------------------------------------------ per batch / tick

    def observe(
        self,
        out: BatchOutput,
        now_ms: int,
        batch_seconds: float | None = None,
        *,
        engine: Engine | None = None,
        finalised_at_ms: int | None = None,
    ) -> None:
        """Count what one batch (or tick) produced, once it was handed to the producer at ``now_ms``.

        With ``engine`` and ``finalised_at_ms`` (when the batch or tick began), the
        due→published latency of every anomaly is observed too.
        """
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
        if out.anomalies:
            scorers = engine_scorers(engine) if engine is not None else {}
            for _, anomaly in out.anomalies:
                self._observe_anomaly(anomaly, now_ms, scorers.get(anomaly.inference_id),
                                      finalised_at_ms)
        if batch_seconds is not None:
            self.batch_seconds.observe(batch_seconds)

    def _observe_anomaly(self, anomaly: Anomaly, now_ms: int, scorer: AssetScorer | None,
                         finalised_at_ms: int | None) -> None:
        inference = anomaly.inference_id
        self.anomalies.labels(inference).inc()
        self.event_to_published.labels(inference).observe(max(now_ms - anomaly.ts_ms, 0) / 1000)
        if scorer is not None and finalised_at_ms is not None:
            due_ms = due_wall_ms(scorer, anomaly.ts_ms, finalised_at_ms)
            self.due_to_published.labels(inference).observe(max(now_ms - due_ms, 0) / 1000)

    # ------------------------------------------------------------------ told by other glue

    def set_replay(self, replay: Any) -> None:
        """Record a replay's progress (a :class:`streams.replay.ReplayState`)."""
        self.replay_points.labels(replay.inference_id, "done").set(replay.done)
        self.replay_points.labels(replay.inference_id, "total").set(replay.total)
        self.replay_running.labels(replay.inference_id).set(0 if replay.finished else 1)

    def set_inference_status(self, inference_id: str, status: str) -> None:
        """Record an inference's current status: 1 on its series, 0 on the other statuses.

        ``Deleted`` removes the inference's status series. Any other unknown status is a
        ``ValueError`` (labels stay bounded).
        """
        if status == DELETED:
            for s in INFERENCE_STATUSES:
                with contextlib.suppress(KeyError):
                    self.inference_status.remove(inference_id, s)
            self._with_status.add(inference_id)  # never defaulted back to Active
            return
        if status not in INFERENCE_STATUSES:
            raise ValueError(f"unknown inference status {status!r}; one of {INFERENCE_STATUSES}")
        for s in INFERENCE_STATUSES:
            self.inference_status.labels(inference_id, s).set(1.0 if s == status else 0.0)
        self._with_status.add(inference_id)

    def observe_alerts(self, alerts: Iterable[Alert]) -> None:
        """Count alert records published (one per open, update, resolve or single record)."""
        for alert in alerts:
            self.alerts.labels(alert.inference_id, alert.state).inc()

    # ------------------------------------------------------------------ at scrape time

    def track_inference(self, inference_id: str) -> None:
        """Show an inference's counters at zero before anything happened, so rates exist.

        Its status defaults to ``Active`` (a configured inference runs) unless a status was
        already set for it.
        """
        if inference_id in self._tracked:
            return
        self._tracked.add(inference_id)
        self.anomalies.labels(inference_id)
        self.gap_points.labels(inference_id)
        self.event_to_published.labels(inference_id)
        self.due_to_published.labels(inference_id)
        for outcome in _INITIAL_OUTCOMES:
            self.points.labels(inference_id, outcome)
        for state in ALERT_STATES:
            self.alerts.labels(inference_id, state)
        if inference_id not in self._with_status:
            self.set_inference_status(inference_id, "Active")

    def observe_engine(self, engine: Engine, now_ms: int) -> None:
        """Per inference of ``engine``: zero series, assets held, and the watermark lag."""
        scorers = engine_scorers(engine)
        for inference_id in scorers:
            self.track_inference(inference_id)
        newest: dict[str, int] = {}
        for _, state, scorer in engine.states.values():
            slot_ms = state.watermark.watermark_ms
            if slot_ms is None:
                continue
            inference_id = scorer.inference.inference_id
            if slot_ms > newest.get(inference_id, slot_ms - 1):
                newest[inference_id] = slot_ms
        for inference_id, slot_ms in newest.items():
            due_ms = scorers[inference_id].slots.due_at_ms(slot_ms)
            self.watermark_lag.labels(inference_id).set((now_ms - due_ms) / 1000)
        for gone in self._watermark_labels - set(newest):
            self.watermark_lag.remove(gone)
        self._watermark_labels = set(newest)
        self.assets.set(len(engine.states))

    def set_consumer_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Set the lag of every assigned input partition; forget partitions no longer assigned."""
        labels = {(topic, str(partition)) for topic, partition in lags}
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic, str(partition)).set(lag)
        for gone in self._lag_labels - labels:
            self.consumer_lag.remove(*gone)
        self._lag_labels = labels

    async def observe_consumer(self, app: Any, topics: Collection[str]) -> None:
        """Set the consumer lag of the Faust app's assigned partitions of ``topics``."""
        self.set_consumer_lag(await consumer_lags(app, topics))


async def consumer_lags(app: Any, topics: Collection[str]) -> dict[tuple[str, int], int]:
    """Lag of every partition of ``topics`` assigned to the Faust app's consumer.

    End offsets come from the broker (``Consumer.highwaters``), or, if it does not answer in
    :data:`HIGHWATER_TIMEOUT_S`, from the last fetch (Faust's monitor sensor). The committed
    offset is the last one this worker committed (the monitor sensor), else the consumer's
    position (where a fresh assignment starts: the group's committed offset). Empty while the
    consumer is not running.
    """
    consumer = app.consumer
    monitor = app.monitor
    try:
        tps = [tp for tp in consumer.assignment() if tp.topic in topics]
    except Exception:  # the consumer thread is not started (or stopping): no lag to report
        return {}
    if not tps:
        return {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HIGHWATER_TIMEOUT_S
    highwaters: Mapping[Any, int | None]
    try:
        highwaters = await asyncio.wait_for(consumer.highwaters(*tps), HIGHWATER_TIMEOUT_S)
    except Exception:  # broker slow or away: the end offsets of the last fetch
        highwaters = {tp: monitor.tp_end_offsets.get(tp) for tp in tps}
    lags: dict[tuple[str, int], int] = {}
    for tp in tps:
        end = highwaters.get(tp)
        if end is None:
            continue
        done = monitor.tp_committed_offsets.get(tp)
        if done is None:
            try:  # what is left of the scrape's one budget, so a scrape is never slower
                done = await asyncio.wait_for(consumer.position(tp), max(deadline - loop.time(), 0.01))
            except Exception:  # position unknown (partition being revoked) or out of time
                continue
        if done is None:
            continue
        lags[(tp.topic, tp.partition)] = max(int(end) - int(done), 0)
    return lags
