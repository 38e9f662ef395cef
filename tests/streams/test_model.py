"""Model fitting: algorithm choice, artifact round trip, target false-alarm probability."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from streams.model import Model, ModelParams, choose_algorithm, fit_model, training_scores


def _rows(n: int = 400, d: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize(
    ("algorithm", "n_signals", "kind"),
    [
        ("auto", 1, "zscore"),
        ("auto", 2, "mahalanobis"),
        ("auto", 8, "mahalanobis"),
        ("zscore", 3, "zscore"),
        ("mahalanobis", 1, "mahalanobis"),
    ],
)
def test_algorithm_names_the_detector(algorithm: str, n_signals: int, kind: str) -> None:
    signals = tuple(f"s{j}" for j in range(n_signals))
    m = fit_model(_rows(d=n_signals), ModelParams("m", signals, algorithm=algorithm))
    assert m.detector.kind == kind
    assert choose_algorithm(n_signals) == ("zscore" if n_signals == 1 else "mahalanobis")


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown algorithm"):
        fit_model(_rows(), ModelParams("m", ("a", "b", "c"), algorithm="lstm"))


def test_detector_options_reach_the_detector() -> None:
    m = fit_model(
        _rows(),
        ModelParams("m", ("a", "b", "c"), algorithm="mahalanobis",
                    detector_options={"alpha": 0.01, "smooth": False}),
    )
    assert m.detector.to_dict()["alpha"] == 0.01
    assert m.detector.to_dict()["smooth"] is False


@pytest.mark.parametrize("algorithm", ["zscore", "mahalanobis"])
@pytest.mark.parametrize("target_far", [None, 0.01])
def test_artifact_round_trip(algorithm: str, target_far: float | None) -> None:
    m = fit_model(
        _rows(), ModelParams("m", ("a", "b", "c"), algorithm=algorithm, target_far=target_far)
    )
    assert Model.from_dict(orjson.loads(orjson.dumps(m.to_dict()))) == m


@pytest.mark.parametrize("target_far", [0.005, 0.02, 0.1])
def test_target_far_reports_a_sensitivity_meeting_it_on_held_out_rows(target_far: float) -> None:
    rows = _rows(1_000)
    m = fit_model(rows, ModelParams("m", ("a", "b", "c"), target_far=target_far))
    assert m.sensitivity is not None
    assert m.heldout_far is not None
    assert 1 <= m.sensitivity <= 100
    assert m.heldout_far <= target_far
    assert m.target_far == target_far


def test_without_target_far_nothing_is_held_out() -> None:
    m = fit_model(_rows(), ModelParams("m", ("a", "b", "c")))
    assert (m.sensitivity, m.heldout_far, m.target_far) == (None, None, None)


def test_training_scores_with_history_scores_every_row() -> None:
    m = fit_model(_rows(), ModelParams("m", ("a", "b", "c"), window_size=10))
    rows = _rows(seed=1)
    assert len(training_scores(m.detector, rows)) == len(rows) - 10
    assert len(training_scores(m.detector, rows[50:], history=rows[:50])) == len(rows) - 50
