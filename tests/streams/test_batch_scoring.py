"""Scoring an asset's due slots together gives what scoring them one by one gives.

:meth:`AssetScorer.finalise` scores the due points of a ``batchable`` detector in one numpy
pass; :meth:`AssetScorer.process`, point after point, is the reference. For any series —
gaps (filled or reported), duplicates, missing signals, anomalies, flat stretches, warm-up,
a restart from a snapshot part-way — both give the same outcomes, the same anomalies (scores
equal to rounding) and the same snapshots.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decision import FlagPolicy
from streams.detectors.mahalanobis import Mahalanobis
from streams.inference import InferenceConfig
from streams.model import Model, ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer, AssetState, Outcome
from streams.simulate import SIGNALS, training_rows
from streams.watermark import Slot

S = 1_000
WINDOW = 6


def fitted(**options: Any) -> Model:
    return fit_model(training_rows(2, 600, seed=5),
                     ModelParams(model_id="m", signals=SIGNALS, window_size=WINDOW,
                                 detector_options=options))


MODELS = {"flat": fitted(), "smooth": fitted(smooth=True), "no-flat": fitted(flatline=False),
          # levels over the last points, one signal scored on its change (tracked)
          "tracked": fitted(recent=3, track=[SIGNALS[1]]),
          # a flag policy: runs (streak, hysteresis) decided along the batch as point by point
          "flag-runs": replace(fitted(), flags=FlagPolicy(enter_points=2, exit_margin=0.1)),
          # adoption of a lasting level (streams/adoption.py): the points after it are scored
          # against the new level, along the batch as point by point
          "adoption": replace(fitted(), flags=FlagPolicy(adopt_points=8))}


def reference_finalise(scorer: AssetScorer, state: AssetState, now_ms: int) -> list[Outcome]:
    """The per-point path: every due slot through :meth:`AssetScorer.process`."""
    outcomes = []
    for out in state.watermark.advance(now_ms):
        if isinstance(out, Slot):
            outcomes.append(scorer.process(state, out.reading, filled=out.filled))
        else:
            outcomes.append(Outcome("gap", out.from_ms, gap=out))
    return outcomes


@st.composite
def series(draw: st.DrawFn) -> list[tuple[Reading, int]]:
    """Readings of one asset with the clock time after each, and what makes scoring hard."""
    n = draw(st.integers(5, 70))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = training_rows(1, n, seed=int(rng.integers(1 << 30)))
    out: list[tuple[Reading, int]] = []
    ts = 0
    now = 0
    offset = 0.0  # a level shift lasts: every later point is shifted too
    for i in range(n):
        event = draw(st.sampled_from(
            ["ok"] * 6 + ["gap", "duplicate", "missing", "spike", "flat", "tick", "late",
                          "shift"]))
        if event == "shift":
            offset += draw(st.sampled_from([-12.0, 12.0]))
        values = {s: float(v) + offset for s, v in zip(SIGNALS, rows[i], strict=True)}
        ts += S * (draw(st.integers(2, 6)) if event == "gap" else 1)
        if event == "duplicate" and out:
            ts = out[-1][0].ts_ms
        if event == "missing":
            del values[draw(st.sampled_from(SIGNALS))]
        if event == "spike":
            values["vib"] += 50.0
        if event == "flat" and out:
            values = dict(out[-1][0].signals) or values
        if event == "tick":  # the clock moves on: what is due is finalised now, a few at a time
            now = ts + draw(st.integers(0, 3)) * S
        if event == "late":
            ts -= S
        out.append((Reading("a", ts, values), now))
    return out


def run(scorer: AssetScorer, items: list[tuple[Reading, int]], batch: bool,
        restart_at: int | None) -> tuple[list[Outcome], dict[str, Any]]:
    state = scorer.new_state()
    finalise = scorer.finalise if batch else (lambda st_, now: reference_finalise(scorer, st_, now))
    outcomes: list[Outcome] = []
    for i, (reading, now) in enumerate(items):
        if i == restart_at:
            state = scorer.restore(state.snapshot())
        scorer.accept(state, reading)
        outcomes += finalise(state, now)
    outcomes += finalise(state, 10**12)
    return outcomes, state.snapshot()


def same(a: Outcome, b: Outcome) -> bool:
    close = (a.score is None and b.score is None) or (
        a.score is not None and b.score is not None
        and math.isclose(a.score, b.score, rel_tol=1e-9, abs_tol=1e-12)
        and math.isclose(a.severity or 0.0, b.severity or 0.0, rel_tol=1e-9, abs_tol=1e-12))
    anomalies = (a.anomaly is None) == (b.anomaly is None) and (
        a.anomaly is None or b.anomaly is None or (
            a.anomaly.key == b.anomaly.key and a.anomaly.filled == b.anomaly.filled
            and all(math.isclose(a.anomaly.contributions[s], b.anomaly.contributions[s],
                                 rel_tol=1e-9, abs_tol=1e-12) for s in SIGNALS)))
    return (a.kind, a.ts_ms, a.filled, a.gap) == (b.kind, b.ts_ms, b.filled, b.gap) \
        and close and anomalies and a.adoption == b.adoption


@pytest.mark.parametrize("kind", sorted(MODELS))
@settings(max_examples=60, deadline=None)
@given(items=series(), fill=st.sampled_from(["previous", "zero", "none"]),
       max_fill=st.integers(0, 3), sensitivity=st.integers(40, 100), start=st.integers(0, 20),
       restart=st.one_of(st.none(), st.integers(0, 70)))
def test_batch_scoring_gives_the_outcomes_anomalies_and_snapshots_of_point_by_point(
    kind: str, items: list[tuple[Reading, int]], fill: str, max_fill: int, sensitivity: int,
    start: int, restart: int | None,
) -> None:
    model = replace(MODELS[kind], fill=fill)
    scorer = AssetScorer(InferenceConfig("i", "m", "t", sensitivity=sensitivity,
                                         start_ms=start * S, max_fill_points=max_fill), model)
    assert getattr(scorer.new_state().detector, "batchable", False)
    batched, batched_snapshot = run(scorer, items, batch=True, restart_at=restart)
    expected, expected_snapshot = run(scorer, items, batch=False, restart_at=restart)
    assert len(batched) == len(expected)
    assert all(same(a, b) for a, b in zip(batched, expected, strict=True)), \
        [(a, b) for a, b in zip(batched, expected, strict=True) if not same(a, b)][:3]
    assert batched_snapshot == expected_snapshot


def test_the_batch_path_is_taken_and_finds_the_spike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: enough due points at once go through score_many, and it flags a spike."""
    model = MODELS["flat"]
    scorer = AssetScorer(InferenceConfig("i", "m", "t"), model)
    state = scorer.new_state()
    rows = training_rows(1, 40, seed=8)
    rows[30, 3] += 50.0
    for i, row in enumerate(rows):
        scorer.accept(state, Reading("a", i * S, dict(zip(SIGNALS, map(float, row), strict=True))))
    calls: list[int] = []
    original = Mahalanobis.score_many

    def counting(self: Mahalanobis, history: np.ndarray, first: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(history) - first)
        return original(self, history, first)

    monkeypatch.setattr(Mahalanobis, "score_many", counting)
    outcomes = scorer.finalise(state, 10**9)
    assert calls == [40 - WINDOW]  # one pass for every point after the warm-up
    assert [o.ts_ms for o in outcomes if o.anomaly is not None] == [30 * S]
