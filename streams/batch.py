"""Batch detection: a finite series of one asset scored through the stream's own path (SPEC §8).

The synchronous ``POST /v1/detect`` and the asynchronous jobs both score a table of
timestamps × signals that is all there, from a file or a request. They do it with the very
objects a streaming inference uses — :class:`streams.scoring.AssetScorer` with its slots,
fill and gap rules (:mod:`streams.watermark`), sliding window, detector, calibration and
sensitivity — on the **event-time clock** (SPEC §5.2): the clock is the largest timestamp
fed so far, so a slot is finalised once a later point has been fed, and :meth:`BatchScorer.finish`
finalises the rest, as the worker's idle rule does when a feed stops. The data delay
offset is 0: the data are complete.

Input comes in chunks (:meth:`BatchScorer.feed`); the order of points within a chunk does
not matter, and a point whose slot an earlier chunk already finalised is **late** (counted,
not scored), as in the stream. Memory is the window and the points of one chunk.

Each anomalous point becomes a :class:`Detection`: the signals involved (those whose share
of the score is at least an even share, most contributing first), every signal's
contribution, the **actual** values scored (filled ones where the point was filled) and the
**expected** values where the detector has them (its adapted reference mean: what it takes
as normal for each signal), the score and the calibrated severity.

>>> import numpy as np
>>> from streams.model import fit_model, ModelParams
>>> from streams.records import Reading
>>> rows = np.random.default_rng(0).normal(size=(400, 1))
>>> model = fit_model(rows, ModelParams(model_id="m", signals=("v",), window_size=4))
>>> batch = BatchScorer(model)
>>> normal = np.random.default_rng(1).normal(size=10).tolist()
>>> found = batch.feed([Reading("s", 1000 * t, {"v": normal[t]}) for t in range(8)])
>>> found += batch.feed([Reading("s", 8000, {"v": 40.0}), Reading("s", 9000, {"v": normal[9]})])
>>> found += batch.finish()
>>> [(d.ts_ms, d.signals, round(d.actual["v"], 2)) for d in found]  # the spike, and the drop
[(8000, ('v',), 40.0), (9000, ('v',), 0.29)]
>>> batch.counts.scored, batch.counts.warming_up, batch.counts.anomalies
(6, 4, 2)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from streams.calibration import DEFAULT_SENSITIVITY, threshold_for
from streams.codec import format_ts
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer, AssetState
from streams.watermark import Duplicate, Late

__all__ = [
    "DEFAULT_MAX_FILL_POINTS",
    "SYNC_POINT_LIMIT",
    "BatchCounts",
    "BatchScorer",
    "Detection",
    "involved_signals",
]

#: The most data points (timestamps × signals) a synchronous request may carry (SPEC §8).
SYNC_POINT_LIMIT = 30_000
#: The longest run of missing slots filled by the model's fill method (the inference default).
DEFAULT_MAX_FILL_POINTS = InferenceConfig("x", "m", "t").max_fill_points
#: The inference id batch scoring uses inside the core (never published).
BATCH_INFERENCE_ID = "batch"


def involved_signals(contributions: Mapping[str, float]) -> tuple[str, ...]:
    """The signals whose share of the score is at least an even share, largest first.

    >>> involved_signals({"temp": 0.1, "vib": 0.7, "flow": 0.2})
    ('vib',)
    >>> involved_signals({"a": 0.5, "b": 0.5})
    ('a', 'b')
    """
    if not contributions:
        return ()
    total = sum(max(v, 0.0) for v in contributions.values())
    if total <= 0.0:
        return tuple(sorted(contributions))
    even = total / len(contributions)
    ranked = sorted((-v, k) for k, v in contributions.items() if v >= even - 1e-12)
    return tuple(k for _, k in ranked)


@dataclass(frozen=True, slots=True)
class Detection:
    """One anomalous timestamp of a batch."""

    ts_ms: int
    score: float
    severity: float
    signals: tuple[str, ...]
    contributions: Mapping[str, float]
    actual: Mapping[str, float]
    expected: Mapping[str, float] | None
    filled: bool = False

    def to_plain(self) -> dict[str, Any]:
        """The result entry (``schemas/detect-result.v1.json``, ``$defs/anomaly``)."""
        return {
            "timestamp": self.ts_ms,
            "timestamp_iso": format_ts(self.ts_ms),
            "score": float(self.score),
            "severity": float(self.severity),
            "signals": list(self.signals),
            "contributions": {k: float(v) for k, v in self.contributions.items()},
            "actual": {k: float(v) for k, v in self.actual.items()},
            "expected": None if self.expected is None
            else {k: float(v) for k, v in self.expected.items()},
            "filled": self.filled,
        }


@dataclass(slots=True)
class BatchCounts:
    """What happened to the points of a batch (``rows`` read, of which ``rejected`` were bad)."""

    rows: int = 0
    rejected: int = 0
    scored: int = 0
    warming_up: int = 0
    duplicate: int = 0
    late: int = 0
    incomplete: int = 0
    filled: int = 0
    gap_points: int = 0
    anomalies: int = 0

    def to_plain(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


class BatchScorer:
    """Scores one series, chunk by chunk, as a streaming inference on event time would.

    ``sensitivity``: 1-100; by default the model's target-FAR sensitivity, else 70.
    """

    __slots__ = ("_clock_ms", "counts", "model", "scorer", "sensitivity", "state")

    def __init__(self, model: Model, sensitivity: int | None = None,
                 max_fill_points: int = DEFAULT_MAX_FILL_POINTS) -> None:
        self.model = model
        self.sensitivity = sensitivity or model.sensitivity or DEFAULT_SENSITIVITY
        inference = InferenceConfig(BATCH_INFERENCE_ID, model.model_id, "batch",
                                    sensitivity=self.sensitivity, clock="event",
                                    max_fill_points=max_fill_points,
                                    model_version=model.version)
        self.scorer = AssetScorer(inference, model)
        self.state: AssetState = self.scorer.new_state()
        self.counts = BatchCounts()
        self._clock_ms: int | None = None

    @property
    def threshold(self) -> float:
        return threshold_for(self.sensitivity)

    def feed(self, readings: Iterable[Reading]) -> list[Detection]:
        """Take a chunk of points into their slots; score every slot the chunk made due."""
        scorer, state, counts = self.scorer, self.state, self.counts
        clock = self._clock_ms
        for reading in readings:
            counts.rows += 1
            added = scorer.accept(state, reading)
            if isinstance(added, Late):
                counts.late += 1
                continue
            if isinstance(added, Duplicate):
                counts.duplicate += 1
            if clock is None or reading.ts_ms > clock:
                clock = reading.ts_ms
        self._clock_ms = clock
        return [] if clock is None else self._finalise(clock)

    def reject(self, n: int = 1) -> None:
        """Count ``n`` rows that could not be read (they are not scored)."""
        self.counts.rows += n
        self.counts.rejected += n

    def finish(self) -> list[Detection]:
        """Score what is still pending: the input has ended."""
        return self._finalise(self.scorer.due_of_last_pending(self.state))

    def header(self) -> dict[str, Any]:
        """The result's fields besides its anomalies (``schemas/detect-result.v1.json``)."""
        return {"model_id": self.model.model_id, "model_version": self.model.version,
                "sensitivity": self.sensitivity, "threshold": self.threshold,
                "counts": self.counts.to_plain()}

    def result(self, found: Iterable[Detection]) -> dict[str, Any]:
        """The whole result of a batch whose detections are ``found``."""
        return {**self.header(), "anomalies": [d.to_plain() for d in found]}

    def _finalise(self, now_ms: int) -> list[Detection]:
        # the stream's own finalise: its numpy path scores a chunk's points at once when the
        # detector allows (streams.scoring.AssetScorer.finalise)
        counts = self.counts
        found: list[Detection] = []
        for outcome in self.scorer.finalise(self.state, now_ms):
            kind = outcome.kind
            if kind == "gap":
                counts.gap_points += outcome.gap.points if outcome.gap is not None else 0
                continue
            if kind == "scored":
                counts.scored += 1
            elif kind == "warming_up":
                counts.warming_up += 1
            elif kind == "incomplete":
                counts.incomplete += 1
            elif kind == "duplicate":
                counts.duplicate += 1
            if outcome.filled:
                counts.filled += 1
            anomaly = outcome.anomaly
            if anomaly is not None:
                counts.anomalies += 1
                found.append(self._detection(outcome.ts_ms, anomaly.score, anomaly.severity,
                                             anomaly.contributions, outcome.filled, outcome.row,
                                             outcome.expected))
        return found

    def _detection(self, ts_ms: int, score: float, severity: float,
                   contributions: Mapping[str, float], filled: bool,
                   row: tuple[float, ...] | None,
                   expected_row: tuple[float, ...] | None) -> Detection:
        signals = self.model.signals
        actual = dict(zip(signals, row, strict=True)) if row is not None else {}
        expected = (dict(zip(signals, expected_row, strict=True))
                    if expected_row is not None else None)
        return Detection(ts_ms=ts_ms, score=score, severity=severity,
                         signals=involved_signals(contributions),
                         contributions=dict(contributions), actual=actual,
                         expected=expected, filled=filled)
