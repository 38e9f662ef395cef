"""Scoring one asset's points: window, detector, calibration, sensitivity — pure and exact.

Per (inference, asset) the state is a sliding window of the points before the next one, the
detector's small online part, and the timestamp of the last point taken. A point is:

* **duplicate** when its timestamp is not after the last point taken (re-delivered after a
  restart, or sent twice): dropped, so a re-delivered point never scores twice;
* **warming up** while the window is not yet full, or before the inference's start time:
  it fills the window but is not scored;
* **scored** otherwise: scored before it is learnt; anomalous points are not learnt (the
  model is protected from what it flags).

A signal the model needs but the reading lacks is filled from the window's last point when
the model's fill method allows it (the point is then marked filled); otherwise the point is
``incomplete`` and skipped.

>>> import numpy as np
>>> from streams.model import fit_model, ModelParams
>>> from streams.inference import InferenceConfig
>>> from streams.records import Reading
>>> rows = np.random.default_rng(0).normal(size=(400, 1))
>>> model = fit_model(rows, ModelParams(model_id="m", signals=("v",), window_size=4))
>>> scorer = AssetScorer(InferenceConfig("inf", "m", "t"), model)
>>> state = scorer.new_state()
>>> kinds = [scorer.process(state, Reading("a", t, {"v": 0.0})).kind for t in range(6)]
>>> kinds
['warming_up', 'warming_up', 'warming_up', 'warming_up', 'scored', 'scored']
>>> scorer.process(state, Reading("a", 5, {"v": 0.0})).kind
'duplicate'
>>> out = scorer.process(state, Reading("a", 6, {"v": 50.0}))
>>> out.kind, out.anomaly is not None and out.anomaly.key
('scored', 'inf/a/6')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal, NamedTuple, cast

import numpy as np

from streams.adoption import ABNORMAL_SEVERITY, Adoption, AdoptionWatch, recentred
from streams.calibration import is_anomalous, threshold_for
from streams.decision import FlagRun
from streams.detectors import OnlineDetector
from streams.detectors.base import BatchDetector
from streams.fill import complete_row
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Anomaly, Reading
from streams.watermark import AddOutcome, AssetWatermark, Gap, Slot, WatermarkConfig
from streams.window import SlidingWindow

#: fewer due points than this are scored one by one (numpy's fixed cost outweighs the loop's)
BATCH_MIN_POINTS = 4

OutcomeKind = Literal["scored", "warming_up", "duplicate", "incomplete", "gap"]


@dataclass(slots=True)
class AssetState:
    """Everything one asset's scoring depends on; ``snapshot()`` is plain data."""

    window: SlidingWindow
    detector: OnlineDetector
    watermark: AssetWatermark
    last_ts_ms: int | None = None
    scored: int = 0
    epoch: int = 0
    #: the first timestamp scored for this asset: the inference's start, or, on the event
    #: clock after a restart, the point after the last one its earlier epoch took
    start_ms: int = 0
    #: the asset's flag run (streams/decision.py): open run and streak, for the model's policy
    run: FlagRun = field(default_factory=FlagRun)
    #: the asset's episode of abnormal points, for adopting a new level (streams/adoption.py)
    watch: AdoptionWatch = field(default_factory=AdoptionWatch)

    def snapshot(self) -> dict[str, Any]:
        return {
            "run": self.run.snapshot(),
            "adoption": self.watch.snapshot(),
            "epoch": self.epoch,
            "window": self.window.snapshot(),
            "detector": self.detector.snapshot(),
            "watermark": self.watermark.snapshot(),
            "last_ts_ms": self.last_ts_ms,
            "scored": self.scored,
            "start_ms": self.start_ms,
        }


def expected_of(detector: object) -> tuple[float, ...] | None:
    """The values a detector expects of the next point, where it has them (``None`` else)."""
    expected = getattr(detector, "expected", None)
    return tuple(expected()) if callable(expected) else None


class Outcome(NamedTuple):
    """What happened to one point.

    A named tuple: immutable, and built for every point about twice as fast as a frozen
    dataclass (that cost showed in profiles of the hot path).
    """

    kind: OutcomeKind
    ts_ms: int
    score: float | None = None
    severity: float | None = None
    anomaly: Anomaly | None = None
    filled: bool = False
    gap: Gap | None = None
    #: a lasting steady change adopted as the asset's new normal after this point
    adoption: Adoption | None = None
    #: an anomaly's scored row, missing signals filled (its actual values, for batch results)
    row: tuple[float, ...] | None = None
    #: an anomaly's expected values, from the detector that scored it (where it has them)
    expected: tuple[float, ...] | None = None


class AssetScorer:
    """Scores the points of any asset of one inference, given that asset's state."""

    __slots__ = ("_row_of", "adopt_points", "correlates", "epoch", "inference", "model", "slots",
                 "threshold", "trained_level")

    def __init__(self, inference: InferenceConfig, model: Model, epoch: int = 0) -> None:
        self.inference = inference
        self.model = model
        #: the inference's activation count: state of another epoch is not this scorer's
        self.epoch = epoch
        self.threshold = threshold_for(inference.sensitivity)
        #: abnormal points in a row before a steady new level is adopted (0: never)
        self.adopt_points = model.flags.adopt_points
        #: each signal's trained level (an adopted asset returns to it: streams/adoption.py)
        self.trained_level: list[float] = list(
            getattr(model.detector.build(), "expected", lambda: ())())
        #: whether an alert config groups across assets (its anomalies then feed
        #: streams/correlation.py)
        self.correlates = any(a.scope == "inference" for a in inference.alerts)
        #: a complete reading's row: its model signals' values, in order (KeyError: one missing)
        self._row_of: Callable[[Mapping[str, float]], tuple[float, ...]] = _row_getter(
            model.signals)
        self.slots = WatermarkConfig(
            interval_ms=model.interval_ms, delay_ms=inference.delay_ms,
            fill=model.fill,  # type: ignore[arg-type]
            max_fill_points=inference.max_fill_points,
        )

    def new_state(self, earlier: dict[str, Any] | None = None) -> AssetState:
        """A fresh state for this epoch, scoring from the inference's start.

        ``earlier``: the asset's stored state of an earlier epoch of this inference. On the
        event clock the inference's time is the feed's own, which stood still while it was
        paused, so the asset resumes after the last point that epoch took: the points before
        fill the window (a pre-fill reads them), the ones after are scored, none twice, none
        skipped. On the wall clock the start stays the inference's (the restart's wall time).

        >>> import numpy as np
        >>> from streams.model import fit_model, ModelParams
        >>> m = fit_model(np.zeros((50, 1)) + np.arange(50)[:, None] % 3,
        ...               ModelParams(model_id="m", signals=("v",), window_size=2))
        >>> old = {"epoch": 1, "last_ts_ms": 5_000}
        >>> AssetScorer(InferenceConfig("i", "m", "t", clock="event"), m, 2).new_state(old).start_ms
        5001
        >>> AssetScorer(InferenceConfig("i", "m", "t", start_ms=9), m, 2).new_state(old).start_ms
        9
        """
        start = self.inference.start_ms
        if earlier is not None and self.inference.clock == "event" and \
                int(earlier.get("epoch", 0)) < self.epoch and earlier.get("last_ts_ms") is not None:
            start = max(start, int(earlier["last_ts_ms"]) + 1)
        return AssetState(
            window=SlidingWindow(self.model.window_size, len(self.model.signals)),
            detector=self.model.detector.build(),
            watermark=self.slots.build(None),
            epoch=self.epoch,
            start_ms=start,
        )

    def owns(self, snapshot: dict[str, Any]) -> bool:
        """Whether a stored snapshot belongs to this scorer's epoch (else it starts afresh)."""
        return int(snapshot.get("epoch", 0)) == self.epoch

    def restore(self, snapshot: dict[str, Any]) -> AssetState:
        return AssetState(
            window=SlidingWindow.from_snapshot(snapshot["window"]),
            detector=self.model.detector.build(snapshot["detector"]),
            watermark=self.slots.build(snapshot.get("watermark")),
            last_ts_ms=snapshot["last_ts_ms"],
            scored=int(snapshot["scored"]),
            epoch=self.epoch,
            # a snapshot in streams.state_format.ASSET_STATE's current format (the store
            # migrates older ones): the oldest had no start, flag run or adoption watch
            start_ms=self.inference.start_ms if snapshot["start_ms"] is None
            else int(snapshot["start_ms"]),
            run=FlagRun.from_snapshot(snapshot["run"]),
            watch=AdoptionWatch.from_snapshot(snapshot["adoption"]),
        )

    def history_from_ms(self, start_ms: int) -> int:
        """The earliest event time a window scoring from ``start_ms`` needs: a window and a fill
        run before the start, and the delay offset (where a pre-fill begins)."""
        model, cfg = self.model, self.inference
        return start_ms - (model.window_size + cfg.max_fill_points + 2) * model.interval_ms \
            - cfg.delay_ms

    def accept(self, state: AssetState, reading: Reading) -> AddOutcome:
        """Take a point into its slot; it is scored when the slot is finalised (SPEC §5.2)."""
        return state.watermark.add(reading)

    def due_of_last_pending(self, state: AssetState) -> int:
        """When the latest pending point's slot falls due (the idle rule finalises up to it).

        With nothing pending, a time before every slot: the idle rule then changes nothing.
        """
        pending = state.watermark.pending()
        if not pending:
            return -(2**63)
        last = max(r.ts_ms for r in pending)
        return self.slots.due_at_ms(self.slots.slot_of(last))

    def finalise(self, state: AssetState, now_ms: int) -> list[Outcome]:
        """Score, in slot order, every slot due at ``now_ms`` on the inference clock.

        Missing slots are filled (scored, marked filled) or reported as gaps. When the
        detector can score several points at once exactly as one after the other (it learns
        nothing in between: ``batchable``), the due points are scored together with numpy;
        otherwise, and for a handful of points, point after point with :meth:`process`.
        Both give the same outcomes, anomalies and state (tests/streams/test_batch_scoring.py).
        """
        due = state.watermark.advance(now_ms)
        if len(due) >= BATCH_MIN_POINTS and getattr(state.detector, "batchable", False):
            return self._finalise_batch(state, due)
        outcomes = []
        for out in due:
            if isinstance(out, Slot):
                outcomes.append(self.process(state, out.reading, filled=out.filled))
            else:
                outcomes.append(Outcome("gap", out.from_ms, gap=out))
        return outcomes

    def _finalise_batch(self, state: AssetState, due: list[Slot | Gap]) -> list[Outcome]:
        """:meth:`finalise` for a ``batchable`` detector: the rows in order first (duplicates,
        fill, warm-up as :meth:`process` decides them), then every point to score at once."""
        window = state.window
        size = window.size
        n0 = len(window)
        last = window.last()
        last_ts = state.last_ts_ms
        start_ms = state.start_ms
        outcomes: list[Outcome | None] = []
        rows: list[tuple[float, ...]] = []
        #: (index in outcomes, index in the rows after the window's, reading, filled)
        pending: list[tuple[int, int, Reading, bool]] = []
        for out in due:
            if not isinstance(out, Slot):
                outcomes.append(Outcome("gap", out.from_ms, gap=out))
                continue
            reading = out.reading
            ts = reading.ts_ms
            if last_ts is not None and ts <= last_ts:
                outcomes.append(Outcome("duplicate", ts))
                continue
            row, signals_filled = self._row_after(reading, last)
            filled = out.filled or signals_filled
            if row is None:
                outcomes.append(Outcome("incomplete", ts))
                continue
            last_ts = ts
            if n0 + len(rows) < size or ts < start_ms:
                outcomes.append(Outcome("warming_up", ts, filled=filled))
            else:
                pending.append((len(outcomes), len(rows), reading, filled))
                outcomes.append(None)
            rows.append(row)
            last = row
        if pending:
            history = np.array([*window, *rows], dtype=float)
            # the points to score are the last rows: once the window is full and the start
            # passed (time only goes forward here), every later row is scored
            first = n0 + pending[0][1]
            detector = cast(BatchDetector, state.detector)  # batchable: finalise checked
            scores, contributions = detector.score_many(history, first)
            self._outcomes_of(state, pending, scores.tolist(), contributions.tolist(), outcomes,
                              history, n0)
            state.scored += len(pending)
        window.extend(rows)
        state.last_ts_ms = last_ts
        return outcomes  # type: ignore[return-value]  # every None was replaced

    def _outcomes_of(self, state: AssetState, pending: list[tuple[int, int, Reading, bool]],
                     scores: list[float], contributions: list[list[float]],
                     outcomes: list[Outcome | None], history: np.ndarray, n0: int) -> None:
        severity_of = self.model.calibrator.severity
        size = self.model.window_size
        for i, (k, r, reading, filled) in enumerate(pending):
            score, parts = scores[i], contributions[i]
            severity = severity_of(score)
            anomaly = None
            if self._flagged(state, severity):
                anomaly = self._anomaly(reading, score, severity, parts, filled)
            # a batchable detector learns nothing: the non-anomalous points need no learn_one
            row = expected = None
            if anomaly is not None:  # scored by the detector before any adoption after it
                row, expected = tuple(history[n0 + r].tolist()), expected_of(state.detector)
            adoption = None
            if self.adopt_points:
                j = n0 + r  # the point's row in history; the window after it ends there
                adoption = self._adopt(state, severity, reading.ts_ms, history[j].tolist(),
                                       history[j - size + 1:j + 1])
                if adoption is not None and i + 1 < len(pending):
                    # the later points are scored against the adopted level
                    detector = cast(BatchDetector, state.detector)
                    rest, rest_parts = detector.score_many(history, j + 1)
                    scores[i + 1:] = rest.tolist()
                    contributions[i + 1:] = rest_parts.tolist()
            outcomes[k] = Outcome("scored", reading.ts_ms, score, severity, anomaly, filled,
                                  None, adoption, row, expected)

    def _adopt(self, state: AssetState, severity: float, ts_ms: int, row: Sequence[float],
               window: np.ndarray | None = None) -> Adoption | None:
        """Follow the asset's episode of abnormal points and, when it is due, adopt its level
        if the last window (``window``, default the asset's) is steady against it
        (streams/adoption.py): the detector is re-centred, the flag run and episode closed."""
        watch = state.watch
        size = self.model.window_size
        adopt_due = watch.step(row, severity >= ABNORMAL_SEVERITY, self.adopt_points, size)
        return_due = watch.return_due(size)
        if not (adopt_due or return_due):
            return None
        if window is None:
            window = np.array(list(state.window), dtype=float)
        candidate, restored = None, False
        if return_due:  # back at the trained level: go home first
            candidate = recentred(state.detector, self.trained_level, window,
                                  self.model.calibrator)
            restored = candidate is not None
        if candidate is None and adopt_due:
            candidate = recentred(state.detector, watch.mean(), window, self.model.calibrator)
        if candidate is None:
            return None
        adoption = Adoption(ts_ms, watch.points,
                            state.detector.expected(),  # type: ignore[attr-defined]
                            candidate.expected(),  # type: ignore[attr-defined]
                            restored)
        state.detector = candidate
        state.run = FlagRun()
        watch.reset()
        watch.adopted = not restored
        return adoption

    def _flagged(self, state: AssetState, severity: float) -> bool:
        """Whether a point of this severity is anomalous: at or above the sensitivity's
        threshold, or as the model's flag policy decides with the asset's run."""
        policy = self.model.flags
        if policy.is_plain:
            return is_anomalous(severity, self.inference.sensitivity)
        return policy.step(state.run, severity, self.threshold).flagged

    def _anomaly(self, reading: Reading, score: float, severity: float,
                 contributions: Sequence[float], filled: bool) -> Anomaly:
        return Anomaly(
            inference_id=self.inference.inference_id,
            asset_id=reading.asset_id,
            ts_ms=reading.ts_ms,
            model_id=self.model.model_id,
            model_version=self.model.version,
            score=score,
            severity=severity,
            sensitivity=self.inference.sensitivity,
            threshold=self.threshold,
            contributions=dict(zip(self.model.signals, contributions, strict=True)),
            filled=filled,
        )

    def process(self, state: AssetState, reading: Reading, filled: bool = False) -> Outcome:
        """Score one point directly (its slot's turn has come): window, detector, calibration."""
        ts = reading.ts_ms
        if state.last_ts_ms is not None and ts <= state.last_ts_ms:
            return Outcome("duplicate", ts)
        row, signals_filled = self._row(reading, state.window)
        filled = filled or signals_filled
        if row is None:
            return Outcome("incomplete", ts)
        state.last_ts_ms = ts
        window = state.window
        if not window.full or ts < state.start_ms:
            window.push(row)
            return Outcome("warming_up", ts, filled=filled)
        scored = state.detector.score_one(row, window)
        severity = self.model.calibrator.severity(scored.score)
        anomaly = None
        if self._flagged(state, severity):
            anomaly = self._anomaly(reading, scored.score, severity, scored.contributions, filled)
        else:
            state.detector.learn_one(row, window)
        window.push(row)
        state.scored += 1
        # an anomalous point is not learnt: the detector's expectation is the one it scored with
        expected = None if anomaly is None else expected_of(state.detector)
        adoption = self._adopt(state, severity, ts, row) if self.adopt_points else None
        return Outcome("scored", ts, scored.score, severity, anomaly, filled, None, adoption,
                       None if anomaly is None else row, expected)

    def _row(
        self, reading: Reading, window: SlidingWindow
    ) -> tuple[tuple[float, ...] | None, bool]:
        return self._row_after(reading, window.last())

    def _row_after(
        self, reading: Reading, last: tuple[float, ...] | None
    ) -> tuple[tuple[float, ...] | None, bool]:
        """The model's row of a reading, missing signals filled from ``last`` (the row before):
        :func:`streams.fill.complete_row`, with its complete-reading fast path inline."""
        signals = reading.signals
        try:
            return self._row_of(signals), False
        except KeyError:
            pass
        return complete_row(self.model.signals, self.model.fill, signals, last)


def _row_getter(signals: Sequence[str]) -> Callable[[Mapping[str, float]], tuple[float, ...]]:
    """The values of ``signals`` of a reading's signal map, as a tuple (one C call).

    >>> _row_getter(("a", "b"))({"b": 2.0, "a": 1.0}), _row_getter(("a",))({"a": 1.0})
    ((1.0, 2.0), (1.0,))
    """
    if len(signals) == 1:
        only = signals[0]
        return lambda values: (values[only],)
    return cast(Callable[[Mapping[str, float]], tuple[float, ...]], itemgetter(*signals))
