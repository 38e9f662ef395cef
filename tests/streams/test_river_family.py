"""The river family's snapshots: exact round trip, and a forged or corrupted one refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streams.detectors import fit_detector
from streams.detectors.river_family import RiverModel
from streams.window import SlidingWindow

SIGNALS = ("a", "b")
OPTIONS = {
    "hst": {"estimator": "HalfSpaceTrees", "params": {"window_size": 40}, "warmup": 100},
    "svm-standard": {"estimator": "OneClassSVM", "scaler": "StandardScaler"},
    "gaussian": {"estimator": "GaussianScorer"},
}


def _run(options: dict) -> tuple[RiverModel, object, SlidingWindow, np.ndarray]:
    rows = np.random.default_rng(1).normal(size=(400, 2))
    model = fit_detector("river", rows[:200], SIGNALS, 4, options)
    assert isinstance(model, RiverModel)
    det = model.build()
    w = SlidingWindow(4, 2)
    for r in rows[200:290]:  # 90 points: not a whole number of HST windows
        x = (float(r[0]), float(r[1]))
        det.score_one(x, w)
        det.learn_one(x, w)
        w.push(x)
    return model, det, w, rows[290:]


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_a_restored_snapshot_scores_the_future_as_the_original(name: str) -> None:
    model, det, w, rest = _run(OPTIONS[name])
    restored = model.build(json.loads(json.dumps(det.snapshot())))
    for r in rest:
        x = (float(r[0]), float(r[1]))
        assert restored.score_one(x, w) == det.score_one(x, w)
        det.learn_one(x, w)
        restored.learn_one(x, w)
        w.push(x)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_a_corrupted_snapshot_is_refused(name: str) -> None:
    model, det, _, _ = _run(OPTIONS[name])
    snap = json.loads(json.dumps(det.snapshot()))
    snap["learnt"] += 1
    with pytest.raises(ValueError, match="river snapshot refused: content hash mismatch"):
        model.build(snap)


def test_a_snapshot_of_another_model_is_refused() -> None:
    model, det, _, _ = _run(OPTIONS["hst"])
    other = RiverModel.from_dict({**model.to_dict(), "mean": [9.0, 9.0]})
    with pytest.raises(ValueError, match="content hash mismatch"):
        other.build(det.snapshot())


def test_a_forged_snapshot_naming_a_foreign_class_is_refused_even_with_a_valid_hash() -> None:
    """The hash is no secret: whoever writes the topic can recompute it. What keeps a forged
    snapshot harmless is that no class outside River's state modules is ever instantiated."""
    from streams.detectors import river_family

    model, det, _, _ = _run(OPTIONS["gaussian"])
    snap = det.snapshot()
    body = {k: v for k, v in snap.items() if k != "sha256"}
    body["estimators"] = [{"$o": "subprocess:Popen", "$v": {"args": "touch /tmp/pwned"}}] * 2
    forged = {**body, "sha256": river_family._digest(model, body)}
    with pytest.raises(ValueError, match=r"river snapshot refused: .*subprocess:Popen is not an "
                                         r"allowed River state class"):
        model.build(forged)


def test_a_snapshot_of_another_format_version_is_refused() -> None:
    model, det, _, _ = _run(OPTIONS["hst"])
    with pytest.raises(ValueError, match="format version 99, expected 1"):
        model.build({**det.snapshot(), "v": 99})


def test_an_unknown_estimator_or_parameter_is_refused_at_training() -> None:
    rows = np.random.default_rng(2).normal(size=(100, 2))
    with pytest.raises(ValueError, match="unknown river estimator 'Nope'"):
        fit_detector("river", rows, SIGNALS, 4, {"estimator": "Nope"})
    with pytest.raises(ValueError, match="HalfSpaceTrees has no parameter depth"):
        fit_detector("river", rows, SIGNALS, 4, {"params": {"depth": 3}})
    with pytest.raises(ValueError, match="unknown river scaler 'RobustScaler'"):
        fit_detector("river", rows, SIGNALS, 4, {"scaler": "RobustScaler"})
