"""Training fills a data set's holes exactly as the stream fills an inference's points: the
rows a model is fitted on are the rows a streaming inference would push into its window."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.inference import InferenceConfig
from streams.model import ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.training import Table, TrainingSpec, prepare

S = 1_000
SIGNALS = ("a", "b")


@st.composite
def holey(draw: st.DrawFn) -> np.ndarray:
    """Slots × signals with whole slots missing (runs of any length) and lone values missing."""
    n = draw(st.integers(12, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grid = rng.normal(size=(n, 2)).round(3)
    for _ in range(draw(st.integers(0, 6))):  # runs of missing slots
        at, length = draw(st.integers(1, n - 2)), draw(st.integers(1, 12))
        grid[at:min(at + length, n - 1)] = np.nan
    for _ in range(draw(st.integers(0, 8))):  # a signal missing from a reading
        grid[draw(st.integers(0, n - 1)), draw(st.integers(0, 1))] = np.nan
    return grid


def stream_rows(grid: np.ndarray, fill: str, max_fill: int) -> list[tuple[float, ...]]:
    """What a streaming inference pushes into an asset's window, fed the same readings."""
    wide = fit_model(np.random.default_rng(0).normal(size=(400, 2)),
                     ModelParams(model_id="m", signals=SIGNALS, window_size=200, fill=fill,
                                 algorithm="mahalanobis"))
    scorer = AssetScorer(InferenceConfig("i", "m", "t", clock="event",
                                         max_fill_points=max_fill), wide)
    state = scorer.new_state()
    for i, row in enumerate(grid.tolist()):
        signals = {s: v for s, v in zip(SIGNALS, row, strict=True) if v == v}
        if signals:
            scorer.accept(state, Reading("p", i * S, signals))
    scorer.finalise(state, 10**12)
    return list(state.window)


@settings(max_examples=150, deadline=None)
@given(grid=holey(), fill=st.sampled_from(["previous", "linear", "zero", "none"]),
       max_fill=st.integers(0, 6))
def test_training_rows_are_the_rows_the_stream_pushes_into_the_window(
        grid: np.ndarray, fill: str, max_fill: int) -> None:
    table = Table(SIGNALS, np.arange(grid.shape[0], dtype=np.int64) * S, grid)
    expected = stream_rows(grid, fill, max_fill)
    if len(expected) < 4:
        return  # too few for any window: training refuses it (tested elsewhere)
    got = prepare(table, TrainingSpec("m", fill=fill, interval_ms=S, window_size=1,
                                      max_fill_points=max_fill)).rows
    assert np.allclose(got, np.array(expected), rtol=0, atol=1e-9, equal_nan=False)
