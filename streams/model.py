"""A trained model: what an inference needs to score a stream, as one JSON-able artifact.

>>> import numpy as np
>>> rows = np.random.default_rng(1).normal(size=(300, 2))
>>> m = fit_model(rows, ModelParams(model_id="m1", signals=("a", "b"), window_size=8))
>>> m.signals, m.window_size, 0.0 <= m.calibrator.severity(5.0) <= 1.0
(('a', 'b'), 8, True)
>>> Model.from_dict(m.to_dict()) == m
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.calibration import Calibrator
from streams.detectors import DetectorModel, model_from_dict
from streams.detectors.zscore import WindowZScoreModel
from streams.window import SlidingWindow

FILL_METHODS = ("linear", "previous", "zero", "none")


@dataclass(frozen=True, slots=True)
class ModelParams:
    """What a user chooses when training a model."""

    model_id: str
    signals: tuple[str, ...]
    window_size: int = 16
    interval_ms: int = 1_000
    fill: str = "previous"
    algorithm: str = "auto"
    version: int = 1
    detector_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Model:
    """A fitted detector with its calibration, ready to build per-asset scorers."""

    model_id: str
    version: int
    signals: tuple[str, ...]
    interval_ms: int
    window_size: int
    fill: str
    detector: DetectorModel
    calibrator: Calibrator

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "assetwatch.model/v1",
            "model_id": self.model_id,
            "version": self.version,
            "signals": list(self.signals),
            "interval_ms": self.interval_ms,
            "window_size": self.window_size,
            "fill": self.fill,
            "detector": self.detector.to_dict(),
            "calibration": self.calibrator.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Model:
        if d.get("format") != "assetwatch.model/v1":
            raise ValueError(f"not an assetwatch model artifact (format {d.get('format')!r})")
        return cls(
            model_id=str(d["model_id"]),
            version=int(d["version"]),
            signals=tuple(d["signals"]),
            interval_ms=int(d["interval_ms"]),
            window_size=int(d["window_size"]),
            fill=str(d["fill"]),
            detector=model_from_dict(d["detector"]),
            calibrator=Calibrator.from_dict(d["calibration"]),
        )


def training_scores(detector: DetectorModel, rows: np.ndarray) -> np.ndarray:
    """Scores of each training point after the first full window, the model left frozen."""
    online = detector.build()
    window = SlidingWindow(detector.window_size, rows.shape[1])
    scores = []
    for row in rows:
        x = tuple(float(v) for v in row)
        if window.full:
            scores.append(online.score_one(x, window).score)
        window.push(x)
    return np.asarray(scores)


def fit_model(rows: np.ndarray, params: ModelParams) -> Model:
    """Fit the detector on training rows (points × signals) and calibrate it on their scores."""
    if params.fill not in FILL_METHODS:
        raise ValueError(f"unknown fill method {params.fill!r}; choose one of {FILL_METHODS}")
    if params.algorithm not in ("auto", "zscore"):
        raise ValueError(f"unknown algorithm {params.algorithm!r}; choose 'auto' or 'zscore'")
    detector = WindowZScoreModel.fit(
        rows, params.signals, params.window_size, **dict(params.detector_options)
    )
    calibrator = Calibrator.fit(training_scores(detector, rows))
    return Model(
        model_id=params.model_id,
        version=params.version,
        signals=params.signals,
        interval_ms=params.interval_ms,
        window_size=params.window_size,
        fill=params.fill,
        detector=detector,
        calibrator=calibrator,
    )
