"""Multivariate Mahalanobis (Hotelling T²) detector: the signals' joint structure, per asset.

Fitted on training rows: each signal's mean ``μ_j`` and std ``σ_j``, and the signals'
correlation matrix ``R`` shrunk towards the identity, ``R_λ = (1 − λ)·R + λ·I`` (so a constant
or perfectly collinear signal still gives an invertible matrix), inverted once: ``P = R_λ⁻¹``.

A point ``x`` is scored on its standardised residual (the default), or, with
``smooth=True``, on that of the mean of ``W ∪ {x}`` with ``W`` the window of points before it
(a sustained shift then stands out of the noise by ``√(|W| + 1)``; on SKAB it raised false
alarms more than it lowered missed ones, see docs/detectors.md):

* ``z_j = (m_j − μ_j) / σ_j``;
* ``T² = zᵀ P z``; the score is ``√(T² / d)`` (root mean square, in standard deviations);
* signal ``j``'s contribution is its share of ``T²``, ``max(z_j · (P z)_j, 0)``, normalised.

With ``flatline=True`` (the default) a stuck sensor is evidence too. For each signal the
fit records ``f_j``, the 0.1 % quantile of the range (max − min) of training windows of
``|W| + 1`` points; when the range of ``W ∪ {x}`` falls below it, ``flat_j = 2·ln(f_j / range)``
(capped at 20; an exactly flat window gets the cap). A signal whose training windows are
ever flat (``f_j = 0``, e.g. a quantised one) gives no such evidence, and by construction the
evidence appears in only ~0.1 % of training windows, so it barely moves the calibration.
The score becomes ``√(T² / d) + max_j flat_j``. The range is exact arithmetic on the
window's own values, so a restored window scores bit-for-bit as the original would.

Online, per asset, only ``μ`` and ``σ²`` adapt (exponentially, rate ``alpha``, from the
points the scorer lets it learn: never from anomalous ones); the correlation structure stays
the fitted one, shared by every asset. So the per-asset state is ``2·d`` floats.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> base = rng.normal(size=(500, 1))
>>> train = np.hstack([base, base + 0.1 * rng.normal(size=(500, 1))])  # two correlated signals
>>> model = MahalanobisModel.fit(train, signals=("a", "b"), window_size=8)
>>> det = model.build()
>>> from streams.window import SlidingWindow
>>> w = SlidingWindow(8, 2, [tuple(r) for r in train[-8:]])
>>> together, apart = det.score_one((1.0, 1.0), w), det.score_one((1.0, -1.0), w)
>>> together.score < apart.score  # the same sizes, but against the correlation
True
>>> [round(c, 2) for c in apart.contributions]
[0.52, 0.48]
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial, reduce
from typing import Any

import numpy as np

from streams.detectors.base import DetectorScore, check_training_rows, window_views
from streams.window import SlidingWindow

_MIN_STD = 1e-9
_REL_MIN_STD = 1e-6  # a signal constant in training gets σ = 1e-6 · max(1, |μ|)
_VAR_FLOOR_FACTOR = 0.5
_FLAT_QUANTILE = 0.001
_FLAT_CAP = 20.0


def flat_floor(rows: np.ndarray, window_size: int, q: float = _FLAT_QUANTILE,
               lengths: Sequence[int] | None = None) -> np.ndarray:
    """Per signal, the ``q`` quantile over training of the range in windows of ``window_size + 1``.

    >>> flat_floor(np.array([[0.0], [1.0], [0.0], [1.0]]), 1).tolist()
    [1.0]
    >>> flat_floor(np.array([[0.0], [0.0], [1.0], [1.0]]), 1).tolist()  # flat windows happen
    [0.0]
    """
    views = window_views(rows, window_size + 1, lengths)
    ranges: np.ndarray = np.quantile(views.max(axis=2) - views.min(axis=2), q, axis=0)
    return ranges


def _std_floor(mean: float) -> float:
    return max(_MIN_STD, _REL_MIN_STD * max(1.0, abs(mean)))


@dataclass(frozen=True, slots=True)
class MahalanobisModel:
    """Reference means, stds and the shrunk precision matrix, fitted on training rows."""

    signals: tuple[str, ...]
    window_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    precision: tuple[tuple[float, ...], ...]
    alpha: float = 0.0
    shrinkage: float = 0.1
    smooth: bool = False
    flat_range: tuple[float, ...] = ()
    kind: str = "mahalanobis"

    @classmethod
    def fit(
        cls,
        rows: np.ndarray,
        signals: Sequence[str],
        window_size: int,
        alpha: float = 0.0,
        shrinkage: float = 0.1,
        smooth: bool = False,
        flatline: bool = True,
        lengths: Sequence[int] | None = None,
    ) -> MahalanobisModel:
        """Fit on training rows (shape: points × signals, no NaN); ``lengths`` cuts them into
        pieces no window spans (assets, training ranges).

        >>> m = MahalanobisModel.fit(np.zeros((20, 2)), ("a", "b"), window_size=4)
        >>> m.precision  # constant signals: only the shrinkage is left
        ((10.0, 0.0), (0.0, 10.0))
        """
        check_training_rows(rows, signals, window_size, lengths)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        if not 0.0 < shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in (0, 1], got {shrinkage}")
        mean = rows.mean(axis=0)
        floor = np.array([_std_floor(float(m)) for m in mean])
        std = np.maximum(rows.std(axis=0), floor)
        z = (rows - mean) / std
        corr = (z.T @ z) / rows.shape[0]
        shrunk = (1.0 - shrinkage) * corr + shrinkage * np.eye(len(signals))
        precision = np.linalg.inv(shrunk)
        precision = (precision + precision.T) / 2.0
        flat_range = flat_floor(rows, window_size, lengths=lengths) if flatline else np.zeros(0)
        return cls(
            signals=tuple(signals),
            window_size=window_size,
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in std),
            precision=tuple(tuple(float(v) for v in row) for row in precision),
            alpha=float(alpha),
            shrinkage=float(shrinkage),
            smooth=bool(smooth),
            flat_range=tuple(float(v) for v in flat_range),
        )

    def build(self, state: Mapping[str, Any] | None = None) -> Mahalanobis:
        if state is None:
            return Mahalanobis(self, list(self.mean), [s * s for s in self.std])
        return Mahalanobis(
            self, [float(v) for v in state["mean"]], [float(v) for v in state["var"]]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "signals": list(self.signals),
            "window_size": self.window_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "precision": [list(r) for r in self.precision],
            "alpha": self.alpha,
            "shrinkage": self.shrinkage,
            "smooth": self.smooth,
            "flat_range": list(self.flat_range),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MahalanobisModel:
        return cls(
            signals=tuple(d["signals"]),
            window_size=int(d["window_size"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            precision=tuple(tuple(float(v) for v in r) for r in d["precision"]),
            alpha=float(d["alpha"]),
            shrinkage=float(d["shrinkage"]),
            smooth=bool(d["smooth"]),
            flat_range=tuple(float(v) for v in d.get("flat_range", ())),
        )


class Mahalanobis:
    """Per-asset online part: the slowly adapted reference mean and variance of each signal."""

    __slots__ = ("_np", "_var_floor", "mean", "model", "var")

    def __init__(self, model: MahalanobisModel, mean: list[float], var: list[float]) -> None:
        self.model = model
        self.mean = mean
        self.var = var
        # adaptation may narrow a signal's σ to half the fitted one, never to 0
        self._var_floor = [(_VAR_FLOOR_FACTOR * s) ** 2 for s in model.std]
        self._np: tuple[np.ndarray, ...] | None = None

    def score_one(self, x: Sequence[float], window: SlidingWindow) -> DetectorScore:
        # every sum is taken left to right, as score_many takes it: a point scores to the
        # same bits whichever path scores it (tests/streams/test_detector_determinism.py)
        model = self.model
        n = len(window)
        if model.smooth and n:
            m = [_ordered_sum(col, v) / (n + 1) for col, v in zip(window.columns(), x, strict=True)]
        else:
            m = list(x)
        z = [
            (v - mu) / math.sqrt(max(var, floor))
            for v, mu, var, floor in zip(m, self.mean, self.var, self._var_floor, strict=True)
        ]
        pz = [_ordered_sum(map(operator.mul, z, row)) for row in model.precision]
        zpz = [a * b for a, b in zip(z, pz, strict=True)]
        parts = [max(p, 0.0) for p in zpz]
        t2 = max(_ordered_sum(zpz), 0.0)
        d = len(z)
        score = math.sqrt(t2 / d)
        if model.flat_range and n:
            flat = self._flat(x, window)
            worst = max(flat)
            if worst > 0.0:
                score += worst
                parts = [p / d + f * f for p, f in zip(parts, flat, strict=True)]
        total = _ordered_sum(parts)
        if total > 0 and math.isfinite(total):
            contributions = tuple(p / total for p in parts)
        else:
            contributions = (1.0 / d,) * d
        return DetectorScore(score=score, contributions=contributions)

    def _flat(self, x: Sequence[float], window: SlidingWindow) -> list[float]:
        """Per signal, how far the range of ``W ∪ {x}`` fell below the training floor (0: not)."""
        return [_flat_evidence(max(max(col), v) - min(min(col), v), floor)
                for col, v, floor in zip(window.columns(), x, self.model.flat_range, strict=True)]

    @property
    def learns(self) -> bool:
        """Whether :meth:`learn_one` can change this detector (``alpha > 0``)."""
        return self.model.alpha != 0.0

    @property
    def batchable(self) -> bool:
        """Whether :meth:`score_many` scores like :meth:`score_one` point after point: when
        learning changes nothing (``alpha == 0``, the default), a point's score depends only
        on the rows before it."""
        return self.model.alpha == 0.0

    def score_many(self, rows: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Score every row of ``rows`` from ``first`` on, each against the full window of the
        ``window_size`` rows before it, in one go: the scores and the contributions (one row
        per point).

        The same arithmetic as :meth:`score_one` (equal to rounding), valid while nothing is
        learnt in between (:attr:`batchable`); ``first`` must be ≥ ``window_size`` and ``rows``
        a C-contiguous float array.

        >>> import numpy as np
        >>> rows = np.random.default_rng(1).normal(size=(40, 2))
        >>> det = MahalanobisModel.fit(rows, ("a", "b"), window_size=8).build()
        >>> scores, parts = det.score_many(rows, 8)
        >>> one = det.score_one(tuple(rows[20]), SlidingWindow(8, 2, [tuple(r) for r in rows[12:20]]))
        >>> bool(np.isclose(scores[12], one.score)), bool(np.allclose(parts[12], one.contributions))
        (True, True)
        """
        model = self.model
        size = model.window_size
        n, d = rows.shape
        k = n - first
        mean, sd, precision_t, floor = self._arrays()
        if model.smooth or model.flat_range:
            # (k, size + 1, d): the window and the point of every point scored, a view
            s0, s1 = rows.strides
            views = np.ndarray((k, size + 1, d), rows.dtype, rows, (first - size) * s0,
                               (s0, s0, s1))
        # sums left to right, one column at a time, as score_one takes them (numpy's own
        # reductions and BLAS associate differently, and by the array's shape): the same
        # point scores to the same bits in a batch of any size or alone
        if model.smooth:
            acc = views[:, 0, :].copy()
            for j in range(1, size + 1):
                acc += views[:, j, :]
            m = acc / (size + 1)
        else:
            m = rows[first:]
        z = (m - mean) / sd
        pz = z[:, :1] * precision_t[0]
        for j in range(1, d):
            pz += z[:, j:j + 1] * precision_t[j]
        zpz = z * pz
        parts = np.maximum(zpz, 0.0)
        score = np.sqrt(np.maximum(_column_sum(zpz), 0.0) / d)
        if model.flat_range:
            flat = _flat_rows(_window_range(views), floor)
            worst = flat.max(axis=1)
            some = worst > 0.0
            if some.any():
                score = np.where(some, score + worst, score)
                parts = np.where(some[:, None], parts / d + flat * flat, parts)
        total = _column_sum(parts)[:, None]
        ok = (total > 0) & np.isfinite(total)
        contributions = np.divide(parts, total, out=np.full_like(parts, 1.0 / d), where=ok)
        return score, contributions

    def _arrays(self) -> tuple[np.ndarray, ...]:
        """The constant arrays :meth:`score_many` needs (computed once; nothing is learnt)."""
        if self._np is None:
            model = self.model
            floor = np.asarray(model.flat_range or (0.0,) * len(model.std))
            self._np = (
                np.asarray(self.mean),
                np.sqrt(np.maximum(np.asarray(self.var), np.asarray(self._var_floor))),
                np.asarray(model.precision).T.copy(),
                floor,
            )
        return self._np

    def learn_one(self, x: Sequence[float], window: SlidingWindow) -> None:
        a = self.model.alpha
        if a == 0.0:
            return
        for j, v in enumerate(x):
            delta = v - self.mean[j]
            self.mean[j] += a * delta
            self.var[j] = (1.0 - a) * (self.var[j] + a * delta * delta)

    def expected(self) -> tuple[float, ...]:
        """Each signal's expected value: the reference mean, adapted from the points learnt."""
        return tuple(self.mean)

    def recentre(self, mean: Sequence[float]) -> Mahalanobis:
        """This asset's detector with its reference level moved to ``mean`` (spread and
        correlation kept): a lasting change adopted (streams/adoption.py).

        >>> det = MahalanobisModel.fit(np.arange(20.0)[:, None], ("v",), 4).build()
        >>> det.recentre([100.0]).expected(), det.expected()[0] == 9.5
        ((100.0,), True)
        """
        return Mahalanobis(self.model, [float(v) for v in mean], list(self.var))

    def snapshot(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "var": list(self.var)}


def _ordered_sum(values: Any, last: float | None = None) -> float:
    """``values`` (then ``last``) added left to right — not ``math.fsum`` (exact) nor, from
    Python 3.12, the built-in ``sum`` (compensated): the order :meth:`Mahalanobis.score_many`
    adds in. Before 3.12 the built-in ``sum`` is that order, in C.

    >>> _ordered_sum([0.1, 0.2, 0.3]) == (0.1 + 0.2) + 0.3, _ordered_sum([1.0], 2.0)
    (True, 3.0)
    """
    acc: float = _left_to_right(values)
    return acc if last is None else acc + last


#: a left-to-right float sum: the built-in before Python 3.12, a reduction from then on
_left_to_right: Any = sum if sys.version_info < (3, 12) else partial(reduce, operator.add)


def _column_sum(a: np.ndarray) -> np.ndarray:
    """Each row of ``a`` summed left to right (:func:`_ordered_sum`, a column at a time)."""
    acc = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        acc += a[:, j]
    return acc


def _window_range(views: np.ndarray) -> np.ndarray:
    """Each window's range (max − min) per signal, of ``views`` shaped (points, window,
    signals): an elementwise running max/min over the window's rows — numpy's own
    ``max(axis=1)`` on this strided view walks it four to five times slower.

    >>> w = np.array([[[1.0, 5.0], [3.0, 2.0], [2.0, 4.0]]])
    >>> _window_range(w).tolist()
    [[2.0, 3.0]]
    """
    hi = views[:, 0, :].copy()
    lo = hi.copy()
    for j in range(1, views.shape[1]):
        row = views[:, j, :]
        np.maximum(hi, row, out=hi)
        np.minimum(lo, row, out=lo)
    return hi - lo


def _flat_evidence(spread: float, floor: float) -> float:
    """How far a window's range fell below the training floor: 0 at or above it (or without
    a floor), up to :data:`_FLAT_CAP` when flat.

    >>> _flat_evidence(2.0, 1.0), _flat_evidence(0.0, 1.0), round(_flat_evidence(0.5, 1.0), 3)
    (0.0, 20.0, 1.386)
    """
    if floor <= _MIN_STD or spread >= floor:
        return 0.0
    if spread <= 0.0:
        return _FLAT_CAP
    return min(2.0 * math.log(floor / spread), _FLAT_CAP)


def _flat_rows(spread: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """:func:`_flat_evidence` of every window's range (rows) per signal (columns): the few
    below their floor in Python, with the same ``math.log``."""
    flat = np.zeros_like(spread)
    for i, j in zip(*np.nonzero((floor > _MIN_STD) & (spread < floor)), strict=True):
        flat[i, j] = _flat_evidence(float(spread[i, j]), float(floor[j]))
    return flat
