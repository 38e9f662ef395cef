"""Mahalanobis levels over the last points (``recent``) and signals scored on their change
(``track``): what they flag and what they leave alone, as specifications."""

from __future__ import annotations

import numpy as np
import pytest

from streams.detectors.mahalanobis import MahalanobisModel
from streams.window import SlidingWindow

SIGNALS = ("flow", "temp")
WINDOW = 16


def _training(seed: int = 0, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flow = 10 + rng.normal(size=n)
    temp = 40 + 0.005 * np.arange(n) + 0.2 * rng.normal(size=n)  # warms up slowly
    return np.column_stack([flow, temp])


def _scores(model: MahalanobisModel, rows: np.ndarray) -> np.ndarray:
    det = model.build()
    scores, _ = det.score_many(np.ascontiguousarray(rows), WINDOW)
    return scores


def _with_temp(rows: np.ndarray, temp: np.ndarray) -> np.ndarray:
    out = rows.copy()
    out[:, 1] = temp
    return out


def test_a_tracked_signal_warming_far_beyond_training_is_normal_an_untracked_one_is_not() -> None:
    train = _training()
    tracked = MahalanobisModel.fit(train, SIGNALS, WINDOW, track=["temp"])
    plain = MahalanobisModel.fit(train, SIGNALS, WINDOW)
    later = _training(seed=1, n=600)
    later = _with_temp(later, later[:, 1] + 20)  # 20 degrees warmer, at the same slow rate
    limit = 1.5 * _scores(tracked, train).max()
    assert _scores(tracked, later).max() < limit
    assert _scores(plain, later).min() > 5 * _scores(plain, train).max()


def test_a_jump_of_a_tracked_signal_is_flagged_then_becomes_the_new_normal() -> None:
    train = _training()
    model = MahalanobisModel.fit(train, SIGNALS, WINDOW, recent=4, track=["temp"])
    rows = _training(seed=2, n=300)
    rows[150:, 1] += 5.0  # a step of 25 training σ
    scores = _scores(model, rows)
    top = _scores(model, train).max()
    at = 150 - WINDOW  # score index of the step's point
    assert scores[at:at + 4].max() > 5 * top  # seen within the recent points
    assert scores[at + WINDOW + 1:].max() < 1.5 * top  # once the window holds only the new level


def test_recent_points_average_out_a_one_point_spike_but_keep_a_lasting_shift() -> None:
    train = _training()
    point = MahalanobisModel.fit(train, SIGNALS, WINDOW)
    recent = MahalanobisModel.fit(train, SIGNALS, WINDOW, recent=4)
    spike = _training(seed=3, n=100)
    spike[60, 0] += 6.0
    shift = _training(seed=3, n=100)
    shift[60:, 0] += 2.0
    i = 60 - WINDOW
    rel = lambda m, rows: _scores(m, rows) / _scores(m, train).max()  # noqa: E731
    assert rel(recent, spike)[i] < rel(point, spike)[i]
    assert rel(recent, shift)[i + 3:i + 20].min() > rel(point, shift)[i + 3:i + 20].min()


def test_options_round_trip_through_the_artifact_and_older_artifacts_load_as_before() -> None:
    model = MahalanobisModel.fit(_training(), SIGNALS, WINDOW, recent=3, track=["temp"])
    again = MahalanobisModel.from_dict(model.to_dict())
    assert again == model and again.tracked == (False, True)
    old = model.to_dict()
    del old["recent"], old["track"]
    assert MahalanobisModel.from_dict(old).featured is False


def test_adoption_moves_the_levels_and_keeps_a_tracked_signals_reference_change() -> None:
    det = MahalanobisModel.fit(_training(), SIGNALS, WINDOW, track=["temp"]).build()
    moved = det.recentre([20.0, 99.0])
    assert moved.expected()[0] == 20.0
    assert moved.expected()[1] == det.expected()[1]


def test_learning_adapts_the_features_not_the_raw_values() -> None:
    train = _training()
    det = MahalanobisModel.fit(train, SIGNALS, WINDOW, track=["temp"], alpha=0.5).build()
    window = SlidingWindow(WINDOW, 2, [tuple(r) for r in train[-WINDOW:]])
    det.learn_one((10.0, 500.0), window)  # a tracked change of ~460: learnt as a change
    assert 200 < det.expected()[1] < 260


@pytest.mark.parametrize(("options", "message"), [
    ({"track": ["pressure"]}, "not a signal of the model"),
    ({"track": "temp"}, "list of signal names"),
    ({"track": ["temp", "temp"]}, "twice"),
    ({"recent": 0}, r"recent must be in \[1, 17\]"),
    ({"recent": 17, "track": ["temp"]}, r"recent must be in \[1, 16\].*one older point"),
    ({"recent": 2.5}, "whole number"),
    ({"smooth": True, "recent": 4}, "does not combine"),
])
def test_options_that_cannot_be_scored_are_refused_saying_why(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MahalanobisModel.fit(_training(), SIGNALS, WINDOW, **options)
