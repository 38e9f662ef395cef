"""Every registered detector × every check of the detector contract (STYLE habit 7)."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.calibration import is_anomalous
from streams.detectors import ALGORITHMS, fit_detector, model_from_dict
from streams.detectors.base import DetectorModel
from streams.inference import InferenceConfig
from streams.model import ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.window import SlidingWindow

# every registered kind at its defaults, plus the options that change what is learnt or scored
VARIANTS: dict[str, tuple[str, dict]] = {k: (k, {}) for k in sorted(ALGORITHMS)}
VARIANTS["mahalanobis-adaptive-smooth"] = ("mahalanobis", {"alpha": 0.01, "smooth": True})
# levels over the last 4 points, one signal scored on its change against the window (tracked)
# (signal "a": every check's rows have it, the single-signal ones too)
VARIANTS["mahalanobis-tracked"] = ("mahalanobis", {"recent": 4, "track": ["a"]})
VARIANTS["mahalanobis-tracked-adaptive"] = ("mahalanobis", {"recent": 2, "track": ["a"],
                                                            "alpha": 0.01})
# river: HalfSpaceTrees by default (above); the other estimators, some behind a River scaler
VARIANTS["river-hst-minmax"] = ("river", {"estimator": "HalfSpaceTrees", "scaler": "MinMaxScaler",
                                          "params": {"window_size": 50}, "warmup": 120})
VARIANTS["river-gaussian"] = ("river", {"estimator": "GaussianScorer"})
VARIANTS["river-loda"] = ("river", {"estimator": "LODA"})
VARIANTS["river-svm-minmax"] = ("river", {"estimator": "OneClassSVM", "scaler": "MinMaxScaler"})
DETECTORS = sorted(VARIANTS)
# River estimators that cannot rank these two cases, so the ranking half of the check is left
# out for them (the protocol half still runs); docs/detectors.md says why for each
NO_RANK_CONSTANT_MOVE = {
    "river": "HST partitions space into half-spaces; a 0.5 move of a signal constant in "
             "training stays in a cell that holds mass",
    "river-gaussian": "2|Φ(z) − ½| is exactly 1.0 beyond ~8σ: saturated points cannot rank",
    "river-loda": "random projections mix the constant signal with noisy ones",
}
NO_RANK_OUTLIER = {
    "river": "HST with 3 signals and a 100-point reference window: the outlier's edge cell "
             "holds mass",
}
WINDOW = 8
SIGNALS = ("a", "b", "c")


def _rows(seed: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1))
    return np.hstack([base + 0.3 * rng.normal(size=(n, 1)), rng.normal(size=(n, 2)) * 5 + 10])


def _fit(variant: str, rows: np.ndarray, signals: tuple[str, ...] = SIGNALS) -> DetectorModel:
    kind, options = VARIANTS[variant]
    return fit_detector(kind, rows, signals, WINDOW, options)


def _stream(model: DetectorModel, rows: np.ndarray, state: dict | None = None) -> list[float]:
    """Score then learn every row after the first full window; return the scores."""
    det = model.build(state)
    w = SlidingWindow(WINDOW, rows.shape[1])
    out = []
    for r in rows:
        x = tuple(float(v) for v in r)
        if w.full:
            out.append(det.score_one(x, w).score)
            det.learn_one(x, w)
        w.push(x)
    return out


@pytest.mark.parametrize("kind", DETECTORS)
def test_scores_are_finite_and_contributions_sum_to_one(kind: str) -> None:
    rows = _rows(0)
    model = _fit(kind, rows[:200])
    det = model.build()
    w = SlidingWindow(WINDOW, 3)
    for r in rows[200:]:
        x = tuple(float(v) for v in r)
        if w.full:
            s = det.score_one(x, w)
            assert math.isfinite(s.score)
            assert s.score >= 0
            assert len(s.contributions) == 3
            assert math.isclose(sum(s.contributions), 1.0)
            assert all(c >= 0 for c in s.contributions)
            det.learn_one(x, w)
        w.push(x)


@pytest.mark.parametrize("kind", DETECTORS)
def test_seeded_runs_are_deterministic(kind: str) -> None:
    rows = _rows(3)
    a = _stream(_fit(kind, rows[:150]), rows[150:])
    b = _stream(_fit(kind, rows[:150]), rows[150:])
    assert a == b


@pytest.mark.parametrize("kind", DETECTORS)
@pytest.mark.parametrize("codec", ["json", "orjson"])
def test_snapshot_json_round_trip_gives_identical_next_scores(kind: str, codec: str) -> None:
    rows = _rows(4)
    model = _fit(kind, rows[:150])
    det = model.build()
    w = SlidingWindow(WINDOW, 3)
    for r in rows[150:220]:
        x = tuple(float(v) for v in r)
        if w.full:
            det.score_one(x, w)
            det.learn_one(x, w)
        w.push(x)
    snap = det.snapshot()
    raw = orjson.loads(orjson.dumps(snap)) if codec == "orjson" else json.loads(json.dumps(snap))
    restored = model.build(raw)
    w2 = SlidingWindow.from_snapshot(json.loads(json.dumps(w.snapshot())))
    for r in rows[220:]:
        x = tuple(float(v) for v in r)
        assert det.score_one(x, w) == restored.score_one(x, w2)
        det.learn_one(x, w)
        restored.learn_one(x, w2)
        w.push(x)
        w2.push(x)
    assert det.snapshot() == restored.snapshot()


@pytest.mark.parametrize("kind", DETECTORS)
def test_model_artifact_round_trip(kind: str) -> None:
    model = _fit(kind, _rows(5))
    assert model_from_dict(orjson.loads(orjson.dumps(model.to_dict()))) == model


@pytest.mark.parametrize("kind", DETECTORS)
def test_constant_signal_in_training_gives_finite_scores(kind: str) -> None:
    rows = _rows(6)
    rows[:, 1] = 7.0  # std 0 in training
    model = _fit(kind, rows[:200])
    test = rows[200:].copy()
    test[50:, 1] = 7.5  # the constant signal moves
    scores = _stream(model, test)
    assert all(math.isfinite(s) for s in scores)
    if kind not in NO_RANK_CONSTANT_MOVE:
        assert max(scores[45:]) > max(scores[:40])  # the move is noticed


@pytest.mark.parametrize("kind", DETECTORS)
def test_zero_mean_and_all_zero_signals_give_finite_scores(kind: str) -> None:
    rng = np.random.default_rng(7)
    rows = np.hstack([rng.normal(size=(200, 1)), np.zeros((200, 1)), -rng.normal(size=(200, 1))])
    rows[:, 0] -= rows[:, 0].mean()
    model = _fit(kind, rows[:120])
    scores = _stream(model, rows[120:])
    assert all(math.isfinite(s) for s in scores)
    assert all(math.isfinite(s) for s in _stream(model, np.zeros((40, 3))))


@pytest.mark.parametrize("kind", DETECTORS)
def test_single_signal_works(kind: str) -> None:
    rows = _rows(8)[:, :1]
    model = _fit(kind, rows[:150], ("a",))
    scores = _stream(model, rows[150:])
    assert all(math.isfinite(s) for s in scores)


@pytest.mark.parametrize("kind", DETECTORS)
def test_an_obvious_outlier_scores_higher_than_normal_points(kind: str) -> None:
    rows = _rows(9)
    model = _fit(kind, rows[:200])
    det = model.build()
    w = SlidingWindow(WINDOW, 3, [tuple(r) for r in rows[200 : 200 + WINDOW]])
    normal = det.score_one(tuple(rows[210]), w).score
    outlier = det.score_one((40.0, 10.0, 10.0), w).score
    if kind not in NO_RANK_OUTLIER:
        assert outlier > normal


def _scorer(variant: str, sensitivity: int, fill: str = "previous") -> AssetScorer:
    kind, options = VARIANTS[variant]
    params = ModelParams(
        model_id="m", signals=SIGNALS, window_size=WINDOW, algorithm=kind, fill=fill,
        detector_options=options,
    )
    model = fit_model(_rows(10)[:200], params)
    return AssetScorer(InferenceConfig("i", "m", "t", sensitivity=sensitivity), model)


@pytest.mark.parametrize("kind", DETECTORS)
def test_extra_signals_are_ignored_by_the_scorer(kind: str) -> None:
    scorer = _scorer(kind, 70)
    plain, extra = scorer.new_state(), scorer.new_state()
    for t, r in enumerate(_rows(11)[:60]):
        values = dict(zip(SIGNALS, map(float, r), strict=True))
        a = scorer.process(plain, Reading("x", t, values))
        b = scorer.process(extra, Reading("x", t, {**values, "unrelated": 1e9}))
        assert (a.kind, a.score) == (b.kind, b.score)


@pytest.mark.parametrize("kind", DETECTORS)
@pytest.mark.parametrize("fill", ["previous", "zero", "none"])
def test_missing_signals_are_filled_or_skipped_by_the_scorer(kind: str, fill: str) -> None:
    scorer = _scorer(kind, 70, fill)
    state = scorer.new_state()
    rows = _rows(12)[:40]
    for t, r in enumerate(rows):
        scorer.process(state, Reading("x", t, dict(zip(SIGNALS, map(float, r), strict=True))))
    out = scorer.process(state, Reading("x", 100, {"a": 0.1}))  # b and c missing
    if fill == "none":
        assert out.kind == "incomplete"
    else:
        assert out.kind == "scored"
        assert out.filled
        assert out.score is not None
        assert math.isfinite(out.score)


@pytest.mark.parametrize("kind", DETECTORS)
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    low=st.integers(1, 100),
    high=st.integers(1, 100),
    shift=st.floats(0.0, 6.0),
)
def test_higher_sensitivity_flags_a_superset(
    kind: str, seed: int, low: int, high: int, shift: float
) -> None:
    """With protected learning the two runs may learn differently, so the superset property
    is checked on the severities of one run, as the rule promises: on the same data."""
    low, high = min(low, high), max(low, high)
    rows = _rows(seed, 200)
    rows[120:160] += shift
    scorer = _scorer(kind, low)
    state = scorer.new_state()
    severities = []
    for t, r in enumerate(rows):
        out = scorer.process(state, Reading("x", t, dict(zip(SIGNALS, map(float, r), strict=True))))
        if out.severity is not None:
            assert 0.0 <= out.severity <= 1.0
            severities.append(out.severity)
    flagged_low = {i for i, s in enumerate(severities) if is_anomalous(s, low)}
    flagged_high = {i for i, s in enumerate(severities) if is_anomalous(s, high)}
    assert flagged_low <= flagged_high


def test_every_registered_kind_is_in_the_suite() -> None:
    assert {kind for kind, _ in VARIANTS.values()} == set(ALGORITHMS)
