"""Evaluation scores through the stream's path, and one pass decides every sensitivity exactly
as scoring at that sensitivity would."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.batch import BatchScorer
from streams.decision import FlagPolicy
from streams.labelled_scoring import score_series, sweep
from streams.model import Model, ModelParams, fit_model
from streams.records import Reading
from streams.simulate import SIGNALS, training_rows

S = 1_000


PLAIN = FlagPolicy()


def fitted(flags: FlagPolicy = PLAIN, **options: float) -> Model:
    return fit_model(training_rows(2, 600, seed=5),
                     ModelParams(model_id="m", signals=SIGNALS, window_size=6, flags=flags,
                                 detector_options=dict(options)))


def readings(seed: int, n: int = 300, gaps: bool = True) -> list[Reading]:
    rng = np.random.default_rng(seed)
    rows = training_rows(1, n, seed=seed)
    rows[n // 3:n // 3 + 5] += 30.0  # a fault
    rows[2 * n // 3:] += rng.choice([0.0, 15.0])  # maybe a lasting shift
    out = []
    for i, row in enumerate(rows):
        if gaps and rng.random() < 0.05:
            continue  # a missing slot: filled, or a gap, as the stream does
        out.append(Reading("a", i * S, dict(zip(SIGNALS, map(float, row), strict=True))))
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sensitivity=st.integers(30, 100),
       flags=st.sampled_from([FlagPolicy(), FlagPolicy(enter_points=2, exit_margin=0.1),
                              FlagPolicy(adopt_points=24),
                              FlagPolicy(enter_points=2, adopt_points=24)]))
def test_one_pass_decides_any_sensitivity_as_scoring_at_it_would(
        seed: int, sensitivity: int, flags: FlagPolicy) -> None:
    model = fitted(flags)
    points = readings(seed)
    at_70 = score_series(model, points, 70)
    assert at_70.one_pass
    assert at_70.flagged(sensitivity) == score_series(model, points, sensitivity).anomalies


def test_an_adapting_detector_is_scored_once_per_sensitivity() -> None:
    model = fitted(alpha=0.01)
    points = readings(3)
    flagged, first, passes = sweep(model, points, [50, 70, 90])
    assert (first.one_pass, passes) == (False, 3)
    assert flagged[90] == score_series(model, points, 90).anomalies


def test_it_finds_what_batch_detection_finds_filled_slots_and_gaps_included() -> None:
    model = replace(fitted(), fill="previous")
    points = readings(11)
    series = score_series(model, points, 70)
    batch = BatchScorer(model, 70)
    found = batch.feed(points) + batch.finish()
    assert series.anomalies == {("a", d.ts_ms) for d in found}
    assert series.kinds.get("filled", 0) == batch.counts.filled > 0
    assert series.kinds["scored"] == batch.counts.scored


def test_assets_are_scored_apart() -> None:
    model = fitted()
    a, b = readings(1, gaps=False), readings(2, gaps=False)
    both = sorted([*a, *(replace(r, asset_id="b") for r in b)], key=lambda r: r.ts_ms)
    series = score_series(model, both, 70)
    alone = score_series(model, b, 70)
    assert {ts for asset, ts in series.anomalies if asset == "b"} == \
        {ts for _, ts in alone.anomalies}
