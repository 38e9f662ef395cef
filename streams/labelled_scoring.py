"""Scoring a labelled data set through the stream's own path, once for many sensitivities.

``assetwatch model evaluate`` (and the benchmarks) must measure what the worker does, not a
shortcut: each asset's points go through :class:`streams.scoring.AssetScorer` with its slots,
fill and gap rules (:mod:`streams.watermark`, event clock, delay 0: the data are complete),
window, detector, calibration, flag policy and adoption — as :mod:`streams.batch` does for
detection. :func:`score_series` keeps **scores apart from decisions**: every scored point's
severity, and where a lasting level was adopted (:mod:`streams.adoption`). When nothing the
detector learns depends on the decisions (its ``learn_one`` changes nothing: ``learns`` is
false, as for ``mahalanobis``' default), :meth:`ScoredSeries.flagged` decides any
sensitivity from those severities exactly as the scorer would, so a sensitivity sweep needs
one pass; otherwise (an adapting detector learns only the points it did not flag)
:func:`sweep` scores once per sensitivity.

>>> import numpy as np
>>> from streams.model import fit_model, ModelParams
>>> rows = np.random.default_rng(0).normal(size=(400, 1))
>>> model = fit_model(rows, ModelParams(model_id="m", signals=("v",), window_size=4,
...                                     algorithm="mahalanobis"))
>>> values = np.random.default_rng(1).normal(size=30)
>>> values[20] = 9.0
>>> points = [Reading("a", 1000 * t, {"v": float(v)}) for t, v in enumerate(values)]
>>> series = score_series(model, points)
>>> sorted(series.flagged(70)), series.one_pass
([('a', 20000)], True)
>>> series.flagged(99) >= series.flagged(70)  # a superset
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from streams.batch import DEFAULT_MAX_FILL_POINTS
from streams.calibration import DEFAULT_SENSITIVITY, is_anomalous, threshold_for
from streams.decision import FlagRun
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer, AssetState
from streams.watermark import Late

#: the inference id evaluation scoring uses inside the core (never published)
EVALUATION_INFERENCE_ID = "evaluate"


@dataclass(slots=True)
class ScoredSeries:
    """What scoring a data set gave: per asset, every scored point in order.

    ``points[asset]``: (timestamp, severity, whether a lasting level was adopted after it);
    ``anomalies``: the (asset, timestamp) the scorer flagged at ``sensitivity``; ``kinds``:
    how many points ended how (scored, warming_up, duplicate, incomplete, filled, late, gap
    points); ``one_pass``: whether :meth:`flagged` can decide other sensitivities from it.
    """

    model: Model
    sensitivity: int
    one_pass: bool
    points: dict[str, list[tuple[int, float, bool]]] = field(default_factory=dict)
    anomalies: set[tuple[str, int]] = field(default_factory=set)
    kinds: dict[str, int] = field(default_factory=dict)

    def flagged(self, sensitivity: int) -> set[tuple[str, int]]:
        """The (asset, timestamp) flagged at ``sensitivity``: the scorer's own decisions at the
        sensitivity scored, else decided from the severities with the model's flag policy."""
        if sensitivity == self.sensitivity:
            return set(self.anomalies)
        if not self.one_pass:
            raise ValueError("scores depend on the decisions (an adapting detector): "
                             "score once per sensitivity")
        policy = self.model.flags
        threshold = threshold_for(sensitivity)
        out: set[tuple[str, int]] = set()
        for asset, points in self.points.items():
            run = FlagRun()
            for ts, severity, adopted in points:
                if policy.is_plain:
                    hit = is_anomalous(severity, sensitivity)
                else:
                    hit = policy.step(run, severity, threshold).flagged
                if hit:
                    out.add((asset, ts))
                if adopted:  # the scorer closes the asset's flag run when it adopts a level
                    run = FlagRun()
        return out


def score_series(model: Model, readings: Iterable[Reading],
                 sensitivity: int | None = None,
                 max_fill_points: int = DEFAULT_MAX_FILL_POINTS) -> ScoredSeries:
    """Score ``readings`` (any assets, in time order per asset) as a streaming inference on
    event time would, keeping every scored point's severity."""
    s = sensitivity or model.sensitivity or DEFAULT_SENSITIVITY
    inference = InferenceConfig(EVALUATION_INFERENCE_ID, model.model_id, "evaluate",
                                sensitivity=s, clock="event", max_fill_points=max_fill_points,
                                model_version=model.version)
    scorer = AssetScorer(inference, model)
    one_pass = not getattr(model.detector.build(), "learns", True)
    series = ScoredSeries(model, s, one_pass)
    states: dict[str, AssetState] = {}
    kinds = series.kinds
    for reading in readings:
        asset = reading.asset_id
        state = states.get(asset)
        if state is None:
            state = states[asset] = scorer.new_state()
            series.points[asset] = []
        added = scorer.accept(state, reading)
        if isinstance(added, Late):
            kinds["late"] = kinds.get("late", 0) + 1
            continue
        _finalise(scorer, state, asset, reading.ts_ms, series)
    for asset, state in states.items():
        _finalise(scorer, state, asset, scorer.due_of_last_pending(state), series)
    return series


def sweep(model: Model, readings: Sequence[Reading], sensitivities: Sequence[int],
          max_fill_points: int = DEFAULT_MAX_FILL_POINTS,
          ) -> tuple[dict[int, set[tuple[str, int]]], ScoredSeries, int]:
    """Each sensitivity's flagged (asset, timestamp), the first pass, and how many passes it
    took (one when the scores do not depend on the decisions).

    >>> import numpy as np
    >>> from streams.model import fit_model, ModelParams
    >>> m = fit_model(np.random.default_rng(0).normal(size=(300, 1)),
    ...               ModelParams(model_id="m", signals=("v",), window_size=4,
    ...                           algorithm="mahalanobis"))
    >>> pts = [Reading("a", 1000 * t, {"v": 5.0 if t == 9 else 0.0}) for t in range(12)]
    >>> flagged, _, passes = sweep(m, pts, [50, 70, 90])
    >>> passes, flagged[50] <= flagged[70] <= flagged[90]
    (1, True)
    """
    first = score_series(model, readings, sensitivities[0], max_fill_points)
    out = {sensitivities[0]: first.flagged(sensitivities[0])}
    passes = 1
    for s in sensitivities[1:]:
        if first.one_pass:
            out[s] = first.flagged(s)
        else:
            out[s] = score_series(model, readings, s, max_fill_points).flagged(s)
            passes += 1
    return out, first, passes


def _finalise(scorer: AssetScorer, state: AssetState, asset: str, now_ms: int,
              series: ScoredSeries) -> None:
    kinds = series.kinds
    points = series.points[asset]
    for outcome in scorer.finalise(state, now_ms):
        kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
        if outcome.filled:
            kinds["filled"] = kinds.get("filled", 0) + 1
        if outcome.gap is not None:
            kinds["gap_points"] = kinds.get("gap_points", 0) + outcome.gap.points
        if outcome.severity is not None:
            points.append((outcome.ts_ms, outcome.severity, outcome.adoption is not None))
        if outcome.anomaly is not None:
            series.anomalies.add((asset, outcome.ts_ms))
