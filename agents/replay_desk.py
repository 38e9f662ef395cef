"""Replays on the controller's worker (SPEC §6, issue 14): what a replay is checked against,
and running the accepted ones.

The controller (:mod:`agents.controller`) decides a ``replay`` command with
:func:`streams.control.decide`, which needs a :class:`streams.control.ReplayContext`:

* **the finalised bound**: every worker publishes, per inference and epoch, the newest slot it
  has finalised on the stats topic (:class:`agents.inference_sync.InferenceSync`); the bound is the end
  of the *oldest* of those slots over the workers that report one — each worker has
  finalised its assets up to there, so a range ending at or before it is no longer in flight;
* **the model's data interval**, from the scorer this worker holds for the inference;
* **the running replay**, from the controller's table (one at a time per inference).

An accepted replay runs on this worker, in a thread (:func:`agents.replay_runner.run_replay`:
read by time, score apart, overwrite), while the live stream goes on. Each state it reaches
(Running with its progress, Succeeded or Failed with the reason) is handed back to the
event loop (``report``), which stores it in the controller's table and puts it on the events
topic (kind ``replay``). A worker that starts and finds an unfinished replay in the table
that it is not running marks it Failed with the reason: a replay is never Running for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.connection import KafkaConnection
from agents.replay_runner import run_replay
from streams.control import InferenceState, ReplayContext
from streams.replay import ReplayState
from streams.scoring import AssetScorer

log = logging.getLogger(__name__)


def finalised_bound(stats: Mapping[str, Mapping[str, Any]], inference_id: str, epoch: int,
                    interval_ms: int) -> int | None:
    """The end of the oldest newest-finalised slot over the workers reporting the epoch.

    >>> rows = {"i/a": {"inference_id": "i", "epoch": 2, "last_finalised": 9_000},
    ...         "i/b": {"inference_id": "i", "epoch": 2, "last_finalised": 5_000},
    ...         "i/c": {"inference_id": "i", "epoch": 1, "last_finalised": 1_000},
    ...         "i/d": {"inference_id": "i", "epoch": 2, "last_finalised": None}}
    >>> finalised_bound(rows, "i", 2, 1_000), finalised_bound(rows, "j", 2, 1_000)
    (6000, None)
    """
    slots = [int(r["last_finalised"]) for r in stats.values()
             if r.get("inference_id") == inference_id and r.get("epoch") == epoch
             and r.get("last_finalised") is not None]
    return min(slots) + interval_ms if slots else None


class ReplayDesk:
    """Checks and runs replays for the controller; see the module docstring."""

    def __init__(self, kafka: KafkaConnection, anomalies_topic: str,
                 stats: Callable[[], Mapping[str, Mapping[str, Any]]],
                 scorer: Callable[[str], AssetScorer | None],
                 wall_ms: Callable[[], int]) -> None:
        self.kafka = kafka
        self.anomalies_topic = anomalies_topic
        self.stats = stats
        self.scorer = scorer
        self.wall_ms = wall_ms
        #: the replay ids running in this process
        self.running: set[str] = set()
        self.pool = ThreadPoolExecutor(1, "replay")

    def context(self, state: InferenceState | None,
                running: ReplayState | None) -> ReplayContext | None:
        """What a replay of ``state``'s inference is checked against (None: this worker does
        not serve it, so it cannot tell the interval or run it)."""
        if state is None:
            return None
        scorer = self.scorer(state.inference_id)
        if scorer is None or scorer.epoch != state.epoch:
            return None
        interval = scorer.model.interval_ms
        bound = finalised_bound(self.stats(), state.inference_id, state.epoch, interval)
        return ReplayContext(interval, bound, running)

    def start(self, replay: ReplayState, report: Callable[[ReplayState], None]) -> None:
        """Run an accepted replay in the background; ``report`` is called on the event loop
        with every state it reaches."""
        loop = asyncio.get_running_loop()

        def on_loop(state: ReplayState) -> None:
            loop.call_soon_threadsafe(report, state)

        scorer = self.scorer(replay.inference_id)
        if scorer is None:
            report(replay.failed("no scorer for the inference on the controller's worker",
                                 self.wall_ms()))
            return
        self.running.add(replay.replay_id)

        def run() -> None:
            try:
                run_replay(self.kafka, scorer, replay, self.anomalies_topic, self.wall_ms,
                           report=on_loop)
            finally:
                loop.call_soon_threadsafe(self.running.discard, replay.replay_id)

        self.pool.submit(run)

    def abandoned(self, replays: Mapping[str, ReplayState]) -> list[ReplayState]:
        """The unfinished replays of ``replays`` this process is not running, marked Failed."""
        now = self.wall_ms()
        return [r.abandoned(now) for r in replays.values()
                if not r.finished and r.replay_id not in self.running]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
