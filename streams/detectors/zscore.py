"""Window z-score detector: level, deviation-from-window and flat-line evidence per signal.

For each signal ``j`` of a point ``x`` with the window ``W`` of points before it:

* **level**: ``|x_j − μ_j| / σ_j`` against a reference mean and std fitted on training data
  and adapted online, slowly (exponential weight ``alpha``), from non-anomalous points only;
* **jump**: ``|x_j − mean(W_j)| / σ_j``, a sudden move away from the recent past;
* **flat**: how far the window's spread ``std(W_j ∪ x_j)`` has fallen below the spread a
  window has in training (a stuck sensor), as ``log(ref_spread / spread)``.

A signal's score is the largest of the three, the point's score is the root mean square
of the signals' scores, and each signal's contribution is its share of the sum of squares.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> train = rng.normal(size=(500, 2))
>>> model = WindowZScoreModel.fit(train, signals=("a", "b"), window_size=10)
>>> det = model.build()
>>> from streams.window import SlidingWindow
>>> w = SlidingWindow(10, 2, [tuple(r) for r in train[-10:]])
>>> det.score_one((0.1, -0.2), w).score < det.score_one((8.0, 0.0), w).score
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streams.detectors.base import DetectorScore, check_training_rows, window_views
from streams.window import SlidingWindow

_MIN_STD = 1e-9
_MAX_FLAT = 20.0


@dataclass(frozen=True, slots=True)
class WindowZScoreModel:
    """Reference statistics per signal, fitted on training rows."""

    signals: tuple[str, ...]
    window_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    spread: tuple[float, ...]
    alpha: float = 0.001
    kind: str = "zscore"

    @classmethod
    def fit(
        cls, rows: np.ndarray, signals: Sequence[str], window_size: int, alpha: float = 0.001,
        lengths: Sequence[int] | None = None,
    ) -> WindowZScoreModel:
        """Fit on training rows (shape: points × signals, no NaN); ``lengths`` cuts them into
        pieces no window spans (assets, training ranges)."""
        check_training_rows(rows, signals, window_size, lengths)
        mean = rows.mean(axis=0)
        std = np.maximum(rows.std(axis=0), _MIN_STD)
        # median spread of windows of window_size + 1 points (the window and the point)
        k = window_size + 1
        views = window_views(rows, k, lengths)  # (runs, s, k)
        spread = np.maximum(np.median(views.std(axis=2), axis=0), _MIN_STD)
        return cls(
            signals=tuple(signals),
            window_size=window_size,
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in std),
            spread=tuple(float(v) for v in spread),
            alpha=alpha,
        )

    def build(self, state: Mapping[str, Any] | None = None) -> WindowZScore:
        if state is None:
            return WindowZScore(self, list(self.mean), [s * s for s in self.std])
        return WindowZScore(self, list(state["mean"]), list(state["var"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "signals": list(self.signals),
            "window_size": self.window_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "spread": list(self.spread),
            "alpha": self.alpha,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WindowZScoreModel:
        return cls(
            signals=tuple(d["signals"]),
            window_size=int(d["window_size"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            spread=tuple(float(v) for v in d["spread"]),
            alpha=float(d["alpha"]),
        )


class WindowZScore:
    """Per-asset online part: the slowly adapted reference mean and variance."""

    __slots__ = ("mean", "model", "var")

    def __init__(self, model: WindowZScoreModel, mean: list[float], var: list[float]) -> None:
        self.model = model
        self.mean = mean
        self.var = var

    def score_one(self, x: Sequence[float], window: SlidingWindow) -> DetectorScore:
        stats = window.column_stats()
        n = len(window)
        per_signal = []
        for j, v in enumerate(x):
            sd = math.sqrt(max(self.var[j], _MIN_STD * _MIN_STD))
            level = abs(v - self.mean[j]) / sd
            wmean, wstd = stats[j]
            jump = abs(v - wmean) / sd if n else 0.0
            # spread of window ∪ {x} from the window's mean/std (population formulas)
            if n:
                tot = n * (wstd * wstd + wmean * wmean) + v * v
                m = (n * wmean + v) / (n + 1)
                spread = math.sqrt(max(tot / (n + 1) - m * m, 0.0))
                ratio = self.model.spread[j] / max(spread, _MIN_STD)
                flat = min(math.log(ratio), _MAX_FLAT) if ratio > 1.0 else 0.0
            else:
                flat = 0.0
            per_signal.append(max(level, jump, flat))
        squares = [s * s for s in per_signal]
        total = math.fsum(squares)
        score = math.sqrt(total / len(squares))
        contributions = tuple(s / total if total > 0 else 1.0 / len(squares) for s in squares)
        return DetectorScore(score=score, contributions=contributions)

    @property
    def learns(self) -> bool:
        """Whether :meth:`learn_one` can change this detector (``alpha > 0``)."""
        return self.model.alpha != 0.0

    def learn_one(self, x: Sequence[float], window: SlidingWindow) -> None:
        a = self.model.alpha
        for j, v in enumerate(x):
            d = v - self.mean[j]
            self.mean[j] += a * d
            self.var[j] = (1 - a) * (self.var[j] + a * d * d)

    def expected(self) -> tuple[float, ...]:
        """Each signal's expected value: the reference mean, adapted from the points learnt."""
        return tuple(self.mean)

    def recentre(self, mean: Sequence[float]) -> WindowZScore:
        """This asset's detector with its reference level moved to ``mean`` (spread kept): a
        lasting change adopted (streams/adoption.py)."""
        return WindowZScore(self.model, [float(v) for v in mean], list(self.var))

    def snapshot(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "var": list(self.var)}
