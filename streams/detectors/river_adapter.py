"""The other way round: an assetwatch detector as a River anomaly detector (dicts in, score out).

:class:`AssetwatchAnomalyDetector` speaks River's protocol (``learn_one(x)`` /
``score_one(x)`` on feature dicts, ``clone``, parameters in ``__init__``) so the project's
detector families run inside River pipelines and evaluations. It buffers the first
``warmup`` points it learns, fits the ``kind`` detector on them (the features: the keys of the
first point, sorted), then scores each point against the window of the points learnt before
it and learns it. It scores 0 until fitted and until its window is full. A feature missing
from a point takes its last learnt value (0 before any; River's "disappearing features"); a
feature that was not in the first point is ignored. The raw score is the detector's (no
calibration: River's evaluations rank scores, they do not threshold severities).

>>> import random
>>> rng = random.Random(0)
>>> det = AssetwatchAnomalyDetector(kind="zscore", window_size=4, warmup=50)
>>> for _ in range(80):
...     det.learn_one({"a": rng.gauss(0, 1), "b": rng.gauss(5, 1)})
>>> det.score_one({"a": 0.1, "b": 5.0}) < det.score_one({"a": 9.0, "b": 5.0})
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from river import base

from streams.detectors import fit_detector
from streams.detectors.base import DetectorModel, OnlineDetector
from streams.window import SlidingWindow


class AssetwatchAnomalyDetector(base.AnomalyDetector):
    """An assetwatch detector family (``zscore``, ``mahalanobis``, ``river``) as a River one.

    Parameters
    ----------
    kind
        The detector family (``streams.detectors.ALGORITHMS``).
    window_size
        The sliding window, in points.
    warmup
        How many points are learnt before the detector is fitted on them.
    options
        The family's options (as ``--detector-options``).
    """

    def __init__(self, kind: str = "mahalanobis", window_size: int = 8, warmup: int = 64,
                 options: Mapping[str, Any] | None = None) -> None:
        self.kind = kind
        self.window_size = window_size
        self.warmup = warmup
        self.options = options
        self._features: tuple[Any, ...] | None = None
        self._last: dict[Any, float] = {}
        self._buffer: list[tuple[float, ...]] = []
        self._model: DetectorModel | None = None
        self._det: OnlineDetector | None = None
        self._window: SlidingWindow | None = None

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"kind": "zscore", "window_size": 4, "warmup": 20}
        yield {"kind": "mahalanobis", "window_size": 4, "warmup": 20}

    def _row(self, x: Mapping[Any, Any]) -> tuple[float, ...]:
        assert self._features is not None
        out = []
        for f in self._features:
            v = x.get(f)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                out.append(self._last.get(f, 0.0))
            else:
                out.append(float(v))
        return tuple(out)

    def learn_one(self, x: dict[Any, Any]) -> None:
        if self._features is None:
            self._features = tuple(sorted(x, key=str))
        row = self._row(x)
        self._last = dict(zip(self._features, row, strict=True))
        if self._det is None or self._window is None:
            self._buffer.append(row)
            if len(self._buffer) >= max(self.warmup, self.window_size + 2):
                self._fit()
            return
        self._det.learn_one(row, self._window)
        self._window.push(row)

    def _fit(self) -> None:
        assert self._features is not None
        rows = np.asarray(self._buffer, dtype=float)
        self._model = fit_detector(self.kind, rows, tuple(str(f) for f in self._features),
                                   self.window_size, dict(self.options or {}))
        self._det = self._model.build()
        self._window = SlidingWindow(self.window_size, len(self._features),
                                     self._buffer[-self.window_size:])
        self._buffer = []

    def score_one(self, x: dict[Any, Any]) -> float:
        if self._det is None or self._window is None or not self._window.full:
            return 0.0
        return self._det.score_one(self._row(x), self._window).score
