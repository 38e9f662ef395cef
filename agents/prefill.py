"""Pre-fill of a new epoch's windows, per owned partition (SPEC §5.4; docs/control.md).

When an inference starts an epoch (create, restart, model update) or a partition moves to
this worker, the epoch's slots on that partition are *held*: the live stream's points wait
while the history before them is read from the topic (:func:`agents.history.read_history`,
in a thread) and fed to the engine's windows, so the first live points are scored with full
windows, exactly as if the inference had been running. A marker in the asset-state table
(``#prefill/<inference>/<epoch>/<partition>``) says a pre-fill is done, so a restarted worker
does not do it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from agents.connection import KafkaConnection
from agents.history import read_history
from agents.settings import Settings
from streams.checkpoint import checkpoint_key
from streams.engine import BatchOutput, Engine, Message, by_asset_topic
from streams.scoring import AssetScorer

log = logging.getLogger(__name__)

#: (inference id, epoch, partition): one pre-fill
Check = tuple[str, int, int]

#: How long a pre-fill waits for its partition's first live record (where the history read
#: ends) before it ends at the checkpoint or the group's committed offset instead.
LIVE_WAIT_MS = 5_000


def prefill_from_ms(scorer: AssetScorer) -> int:
    """The earliest event time a new epoch's windows need: a window and a fill run before the
    start, and the delay offset."""
    return scorer.history_from_ms(scorer.inference.start_ms)


@dataclass
class EpochPrefills:
    """The pre-fills of this worker: which are due, running and done; see the module docstring.

    ``table`` is the asset-state table (the markers live beside the snapshots); ``publish``
    sends what a pre-fill produced (it may finalise slots)."""

    settings: Settings
    engine: Engine
    kafka: KafkaConnection
    table: Any
    publish: Callable[[BatchOutput], None]
    wall_ms: Callable[[], int]
    recovered: Callable[[], bool]
    assigned: Callable[[], set[int]]
    checks: set[Check] = field(default_factory=set)
    #: per check, each topic's live position when the epoch started there (None: not read yet)
    until: dict[Check, dict[str, int | None]] = field(default_factory=dict)
    jobs: dict[Check, Future[list[Message]]] = field(default_factory=dict)
    #: per check still waiting for its partition's first live record, since when (wall ms)
    waiting: dict[Check, int] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, "prefill"))

    def start_epoch(self, scorer: AssetScorer, partitions: Iterable[int]) -> None:
        """Hold the epoch's slots on these partitions, and note where the live stream stands:
        the pre-fill reads the history before it, the live stream the rest."""
        parts = set(partitions)
        inference_id = scorer.inference.inference_id
        self.engine.hold(inference_id, parts)
        topic = scorer.inference.topic
        for p in parts:
            check = (inference_id, scorer.epoch, p)
            self.checks.add(check)
            self.until[check] = {t: self.engine.positions.get((t, p))
                                 for t in (topic, by_asset_topic(topic))}

    def on_revoked(self, partitions: set[int]) -> None:
        self.checks = {c for c in self.checks if c[2] not in partitions}
        self.waiting = {c: t for c, t in self.waiting.items() if c[2] not in partitions}
        for key in [k for k in self.jobs if k[2] in partitions]:
            self.jobs.pop(key).cancel()

    def step(self) -> None:
        """Start the pre-fills that are due, finish the ones whose reading is done."""
        self._start()
        self._finish()

    def _live_start(self, topic: str, partition: int) -> int | None:
        """The first offset the live stream delivered on this worker (read from a thread: a
        dict lookup)."""
        return self.engine.first_offsets.get((topic, partition))

    def _checkpoint(self, topic: str, partition: int) -> int | None:
        """How far the stored state reaches into a partition (read from a thread: a dict
        lookup)."""
        value: int | None = self.table.data.get(checkpoint_key(topic, partition))
        return value

    def _scorer(self, inference_id: str, epoch: int) -> AssetScorer | None:
        scorer = self.engine.scorer(inference_id)
        return scorer if scorer is not None and scorer.epoch == epoch else None

    def _start(self) -> None:
        """Start the pre-fill of each check whose end is known: where the live stream began,
        or, after :data:`LIVE_WAIT_MS` without a live record, the checkpoint or the group's
        offset. Waiting here, not in the reading thread, lets a busy partition's pre-fill start
        while a quiet one still waits."""
        if not self.checks or not self.recovered():
            return
        now = self.wall_ms()
        for check in sorted(self.checks):
            inference_id, epoch, partition = check
            scorer = self._scorer(inference_id, epoch)
            if scorer is None or partition not in self.assigned():
                self._done_waiting(check)
                continue
            if self.table.data.get(_marker(check)) is not None:
                self._done_waiting(check)
                self.engine.release(inference_id, partition)
                continue
            topic = scorer.inference.topic
            live = self.until.get(check, {}).get(topic) is not None or \
                self._live_start(topic, partition) is not None
            if not live and now - self.waiting.setdefault(check, now) < LIVE_WAIT_MS:
                continue
            self._done_waiting(check)
            self.jobs[check] = self.pool.submit(
                read_history, self.kafka, [topic, by_asset_topic(topic)], partition,
                prefill_from_ms(scorer), self.until.get(check, {}), self.settings.app_id,
                live_start=partial(self._live_start, partition=partition),
                checkpoint=partial(self._checkpoint, partition=partition))

    def _done_waiting(self, check: Check) -> None:
        self.checks.discard(check)
        self.waiting.pop(check, None)

    def _finish(self) -> None:
        for check in [k for k, f in self.jobs.items() if f.done()]:
            future = self.jobs.pop(check)
            inference_id, epoch, partition = check
            scorer = self._scorer(inference_id, epoch)
            if scorer is None or partition not in self.assigned():
                continue
            try:
                messages = future.result()
            except Exception as exc:  # the broker hiccupped: try again on the next turn
                log.warning("pre-fill of %s partition %d failed (%s); retrying", inference_id,
                            partition, exc)
                self.checks.add(check)
                continue
            out = self.engine.prefill_messages(inference_id, partition, messages,
                                               prefill_from_ms(scorer))
            log.info("pre-fill of %s epoch %d partition %d: %d records (%s), %d points taken",
                     inference_id, epoch, partition, len(messages), _spans(messages),
                     out.counts["prefilled"])
            self.publish(out)
            self.until.pop(check, None)
            marker = {"done_at": self.wall_ms(), "records": len(messages)}
            self.table.data[_marker(check)] = marker
            self.table.send_changelog(partition, _marker(check), marker)
            self.engine.release(inference_id, partition)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _spans(messages: Sequence[Message]) -> str:
    """The offsets read per topic, for a log line: ``topic 0–41``."""
    spans: dict[str, list[int]] = {}
    for m in messages:
        span = spans.setdefault(m.topic, [m.offset, m.offset])
        span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
    return ", ".join(f"{t} {a}–{b}" for t, (a, b) in spans.items()) or "none"


def _marker(check: Check) -> str:
    inference_id, epoch, partition = check
    return f"#prefill/{inference_id}/{epoch}/{partition}"
