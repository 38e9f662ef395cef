"""Every worker's follower of the controller's decisions (SPEC §5.4; docs/control.md).

:class:`InferenceSync` follows the status topic and turns the Active states into scorers for
the engine; each new epoch's slots are held and pre-filled per owned partition
(:class:`agents.prefill.EpochPrefills`). It reports an inference that keeps failing to the
controller (→ SystemPaused, the others go on), puts a batch's data gaps and regime changes
on the events topic, and publishes each inference's progress on the stats topic (which the
replay desk reads for the finalised bound). For an inference with ``rescore_late`` it collects
the ranges a batch's late points changed and asks the controller, with the batch's output, to
re-score them
(:class:`streams.late_rescore.LateRequests`, internal command ``rescore_late``).
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.connection import KafkaConnection
from agents.controller import ControlTopics, gap_record
from agents.model_store import ModelStore, ModelStoreError
from agents.prefill import EpochPrefills
from agents.send_buffer import AckedReports
from agents.settings import Settings
from agents.topic_view import TopicView
from streams.codec import dumps
from streams.control import MAX_LATE_RANGES, Command, InferenceState
from streams.engine import BatchOutput, Engine
from streams.late_rescore import LateRequests
from streams.model import Model
from streams.scoring import AssetScorer

log = logging.getLogger(__name__)


@dataclass
class InferenceSync:
    """Keeps this worker's engine in step with the status topic; see the module docstring."""

    settings: Settings
    engine: Engine
    store: ModelStore
    view: TopicView[InferenceState]
    kafka: KafkaConnection
    publish: Callable[[BatchOutput], None]
    table: Any  # the asset-state table: pre-fill markers live beside the snapshots
    topics: ControlTopics
    wall_ms: Callable[[], int]
    recovered: Callable[[], bool]
    assigned: Callable[[], set[int]]
    declared: frozenset[str] = frozenset()
    metrics: Any = None  # agents.metrics.WorkerMetrics: inference status
    worker_id: str = field(default_factory=lambda: socket.gethostname())
    seen_version: int = -1
    models: dict[tuple[str, int | None, int], Model] = field(default_factory=dict)
    failures: Counter[tuple[str, int]] = field(default_factory=Counter)
    reported: set[tuple[str, int]] = field(default_factory=set)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    last_stats_ms: int = 0
    prefills: EpochPrefills = field(init=False)
    #: late points to re-score, asked for with the output of the batch that found them
    #: (coalesced within it): collected longer, a crash after the batch's commit lost them
    late: LateRequests = field(default_factory=lambda: LateRequests(coalesce_ms=0))
    late_requests_sent: int = 0
    #: the records sent so far and not yet acknowledged (the scoring agent's): the stats
    #: report progress only once what came before it is on the topics
    unacknowledged: Callable[[], list[Any]] = list
    #: the stats reports, each sent once the outputs before it are acknowledged
    reports: AckedReports[list[tuple[bytes, bytes]]] = field(default_factory=AckedReports)

    def __post_init__(self) -> None:
        self.prefills = EpochPrefills(self.settings, self.engine, self.kafka, self.table,
                                      self.publish, self.wall_ms, self.recovered, self.assigned)

    @property
    def applied(self) -> bool:
        """The status topic was read to its end and applied: scoring may start."""
        return self.view.caught_up.is_set() and self.seen_version == self.view.version

    @property
    def ready(self) -> bool:
        """:attr:`applied`, and every declared inference is known (accepted or not)."""
        return self.applied and self.declared <= set(self.view.items())

    def step(self) -> None:
        """One turn of the timer: follow the status topic, run pre-fills, report, publish stats."""
        if self.view.version != self.seen_version:
            self.reconcile()
        self.prefills.step()
        now = self.wall_ms()
        if now - self.last_stats_ms >= self.settings.stats_interval_s * 1000:
            self.last_stats_ms = now
            self._publish_stats(now)

    def reconcile(self) -> None:
        self.seen_version = self.view.version
        served = set(self.engine.served)
        scorers = []
        for state in self.view.items().values():
            if self.metrics is not None:
                self.metrics.set_inference_status(state.inference_id, state.status)
            cfg = state.config
            if not state.active or cfg.topic not in served:
                continue
            # loaded afresh at each activation: a restart re-checks the artifact's hash
            key = (cfg.model_id, cfg.model_version, state.epoch)
            try:
                model = self.models.get(key) or self.store.load(cfg.model_id, cfg.model_version)
            except ModelStoreError as exc:
                self._report(state.inference_id, state.epoch, f"model unusable: {exc}")
                continue
            self.models[key] = model
            scorers.append(AssetScorer(cfg, model, state.epoch))
        for scorer in self.engine.set_scorers(scorers):
            self.counts.pop(scorer.inference.inference_id, None)
            self.prefills.start_epoch(scorer, self.assigned())

    def on_assigned(self, partitions: set[int]) -> None:
        for scorer in self.engine.scorers:
            self.prefills.start_epoch(scorer, partitions)

    def on_revoked(self, partitions: set[int]) -> None:
        self.prefills.on_revoked(partitions)

    def observe(self, out: BatchOutput, keep: Callable[[Any], Any]) -> None:
        """Count what a batch did per inference; put its data gaps and regime changes on the
        events topic and ask for the re-score of its late points, each send handed to ``keep``
        (the batch's :class:`agents.send_buffer.Sends`: acknowledged before its input is
        committed); report an inference that keeps failing."""
        for (inference_id, outcome), n in out.by_inference.items():
            self.counts.setdefault(inference_id, Counter())[outcome] += n
        if out.gaps:
            now = self.wall_ms()
            for _, inference_id, key, gap in out.gaps:
                asset_id = key.split("/", 1)[1]  # streams.engine.state_key
                record = gap_record(inference_id, gap.from_ms, gap.to_ms, "missing data", now,
                                    asset_id=asset_id, points=gap.points)
                keep(self.topics.events.send_soon(key=inference_id.encode(), value=dumps(record)))
        for _, inference_id, key, signals, adoption in out.adoptions:
            record = adoption.record(inference_id, key.split("/", 1)[1], signals, self.wall_ms())
            keep(self.topics.events.send_soon(key=inference_id.encode(), value=dumps(record)))
        for _, anomaly in out.anomalies:
            self.counts.setdefault(anomaly.inference_id, Counter())["anomalies"] += 1
        for _, inference_id, point in out.late:
            scorer = self.engine.scorer(inference_id)
            if scorer is not None and scorer.inference.rescore_late:
                self.late.add(inference_id, point.reading.asset_id, point.slot_ms,
                              scorer.model.interval_ms, scorer.model.window_size, self.wall_ms())
        if out.late:
            self._request_rescores(self.wall_ms(), keep)
        for inference_id, error in out.failures.items():
            scorer = self.engine.scorer(inference_id)
            epoch = scorer.epoch if scorer is not None else 0
            self.failures[(inference_id, epoch)] += 1
            log.error("inference %s failed: %s", inference_id, error)
            if self.failures[(inference_id, epoch)] >= self.settings.max_inference_failures:
                self._report(inference_id, epoch, f"failed {self.failures[(inference_id, epoch)]} "
                             f"times; last error: {error}")

    def _request_rescores(self, now_ms: int, keep: Callable[[Any], Any]) -> None:
        """Ask the controller to re-score the ranges late points changed (coalesced), each
        request handed to ``keep``."""
        by_inference: dict[str, list[dict[str, Any]]] = {}
        for inference_id, r in self.late.due(now_ms):
            by_inference.setdefault(inference_id, []).append(r.to_record())
        for inference_id, ranges in by_inference.items():
            scorer = self.engine.scorer(inference_id)
            if scorer is None:
                continue
            for i in range(0, len(ranges), MAX_LATE_RANGES):
                self.late_requests_sent += 1
                cmd = Command(f"late/{inference_id}/{self.worker_id}/{now_ms}/{self.late_requests_sent}",
                              "rescore_late", inference_id,
                              {"interval_ms": scorer.model.interval_ms,
                               "ranges": ranges[i:i + MAX_LATE_RANGES]},
                              now_ms, f"worker:{self.worker_id}")
                keep(self.topics.internal.send_soon(key=inference_id.encode(),
                                                    value=dumps(cmd.to_record())))
                log.info("late points of %s: asked to re-score %d range(s)", inference_id,
                         len(ranges[i:i + MAX_LATE_RANGES]))

    def _report(self, inference_id: str, epoch: int, error: str) -> None:
        """Ask the controller to move the inference to SystemPaused (once per epoch)."""
        if (inference_id, epoch) in self.reported:
            return
        self.reported.add((inference_id, epoch))
        cmd = Command(f"fail/{inference_id}/{epoch}", "fail", inference_id, {"error": error},
                      self.wall_ms(), f"worker:{self.worker_id}")
        self.topics.internal.send_soon(key=inference_id.encode(), value=dumps(cmd.to_record()))

    def _publish_stats(self, now_ms: int) -> None:
        progress = self.engine.progress()
        records: list[tuple[bytes, bytes]] = []
        for scorer in self.engine.scorers:
            inference_id = scorer.inference.inference_id
            p = progress.get(inference_id)
            counts = self.counts.get(inference_id, Counter())
            last = p.last_finalised_ms if p is not None else None
            due = None if last is None else scorer.slots.due_at_ms(last)
            record = {
                "inference_id": inference_id, "worker": self.worker_id, "epoch": scorer.epoch,
                "assets": p.assets if p else 0, "warming_up": p.warming_up if p else 0,
                "last_finalised": last,
                "watermark_lag_ms": None if due is None or scorer.inference.clock != "wall"
                else max(0, now_ms - due),
                "points_scored": counts["scored"], "anomalies": counts["anomalies"],
                "late": counts["late"], "filled": counts["filled"], "gaps": counts["gap"],
                "prefilling": sorted(p_ for i, p_ in self.engine.held if i == inference_id),
                "at": now_ms,
            }
            records.append((f"{inference_id}/{self.worker_id}".encode(), dumps(record)))
        # sent once every output before them is acknowledged: a replay may start as soon as
        # its range is reported finalised, and its records must land after the live ones
        self.reports.capture(records, self.unacknowledged(), self._send_stats)

    def _send_stats(self, records: list[tuple[bytes, bytes]]) -> None:
        for key, value in records:
            self.topics.stats.send_soon(key=key, value=value)

    def close(self) -> None:
        self.prefills.close()
        self.view.close()
