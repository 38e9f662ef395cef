"""Multivariate Mahalanobis (Hotelling T²) detector: the signals' joint structure, per asset.

Fitted on training rows: each signal's mean ``μ_j`` and std ``σ_j``, and the signals'
correlation matrix ``R`` shrunk towards the identity, ``R_λ = (1 − λ)·R + λ·I`` (so a constant
or perfectly collinear signal still gives an invertible matrix), inverted once: ``P = R_λ⁻¹``.

A point ``x`` is scored on its standardised residual (the default), or, with
``smooth=True``, on that of the mean of ``W ∪ {x}`` with ``W`` the window of points before it
(a sustained shift then stands out of the noise by ``√(|W| + 1)``; on SKAB it raised false
alarms more than it lowered missed ones, see docs/detectors.md).

With ``recent=r`` (1, the default: the point itself) the level ``m_j`` is the mean of the
last ``r`` points (``x`` and the ``r − 1`` before it): a fault that lasts stands out of the
noise by ``√r`` while the window still reacts within ``r`` points. And a signal named in
``track`` (signals whose level follows the operating conditions, such as temperatures that
climb as the machine warms up) is scored on its **change**: ``m_j`` minus the mean of the
window's older ``|W| + 1 − r`` points. A tracked signal that drifts slowly is then normal at
any level, and one that jumps is not. With either option the means, stds and correlation are
those of these features over the training windows (docs/detectors.md, "Tracked signals").
With ``m_j`` the value scored for signal ``j`` (the point's, or one of the above):

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
from itertools import islice
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
    recent: int = 1
    track: tuple[str, ...] = ()
    kind: str = "mahalanobis"

    @property
    def featured(self) -> bool:
        """Whether points are scored on features of their window (``recent`` > 1 or tracked
        signals) rather than on their own values (or the whole window's mean, ``smooth``)."""
        return self.recent > 1 or bool(self.track)

    @property
    def tracked(self) -> tuple[bool, ...]:
        """Per signal, whether it is scored on its change (named in ``track``)."""
        return tuple(s in self.track for s in self.signals)

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
        recent: int = 1,
        track: Sequence[str] = (),
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
        track = _check_features(signals, window_size, smooth, recent, track)
        features = (window_features(rows, window_size, recent, [s in track for s in signals],
                                    lengths)
                    if recent > 1 or track else rows)
        mean = features.mean(axis=0)
        floor = np.array([_std_floor(float(m)) for m in mean])
        std = np.maximum(features.std(axis=0), floor)
        z = (features - mean) / std
        corr = (z.T @ z) / features.shape[0]
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
            recent=int(recent),
            track=track,
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
            "recent": self.recent,
            "track": list(self.track),
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
            recent=int(d.get("recent", 1)),
            track=tuple(d.get("track", ())),
        )


class Mahalanobis:
    """Per-asset online part: the slowly adapted reference mean and variance of each signal."""

    __slots__ = ("_np", "_tracked", "_var_floor", "mean", "model", "var")

    def __init__(self, model: MahalanobisModel, mean: list[float], var: list[float]) -> None:
        self.model = model
        self.mean = mean
        self.var = var
        # adaptation may narrow a signal's σ to half the fitted one, never to 0
        self._var_floor = [(_VAR_FLOOR_FACTOR * s) ** 2 for s in model.std]
        self._np: tuple[np.ndarray, ...] | None = None
        self._tracked = model.tracked if model.featured else ()  # () is shared: no bytes

    def score_one(self, x: Sequence[float], window: SlidingWindow) -> DetectorScore:
        # every sum is taken left to right, as score_many takes it: a point scores to the
        # same bits whichever path scores it (tests/streams/test_detector_determinism.py)
        model = self.model
        n = len(window)
        if model.featured:
            m = self._features(x, window)
        elif model.smooth and n:
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

    def _features(self, x: Sequence[float], window: SlidingWindow) -> list[float]:
        """Each signal's level over the last ``recent`` points, a tracked one's minus the mean
        of the window's older points (summed left to right, as :meth:`score_many` sums)."""
        n = len(window)
        r = min(self.model.recent, n + 1)
        older = n + 1 - r
        out = []
        for col, v, tracked in zip(window.columns(), x, self._tracked, strict=True):
            level = _ordered_sum(islice(col, older, None), v) / r
            if tracked and older:
                level -= _ordered_sum(islice(col, older)) / older
            elif tracked:
                level = 0.0  # no older point to compare with: no change seen
            out.append(level)
        return out

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
        if model.smooth or model.flat_range or model.featured:
            # (k, size + 1, d): the window and the point of every point scored, a view
            s0, s1 = rows.strides
            views = np.ndarray((k, size + 1, d), rows.dtype, rows, (first - size) * s0,
                               (s0, s0, s1))
        # sums left to right, one column at a time, as score_one takes them (numpy's own
        # reductions and BLAS associate differently, and by the array's shape): the same
        # point scores to the same bits in a batch of any size or alone
        if model.featured:
            m = _view_features(views, model.recent, np.asarray(model.tracked))
        elif model.smooth:
            m = _running_sum(views, 0, size + 1) / (size + 1)
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
        if self.model.featured:
            x = self._features(x, window)
        for j, v in enumerate(x):
            delta = v - self.mean[j]
            self.mean[j] += a * delta
            self.var[j] = (1.0 - a) * (self.var[j] + a * delta * delta)

    def expected(self) -> tuple[float, ...]:
        """Each signal's expected value: the reference mean, adapted from the points learnt
        (for a tracked signal, its expected change)."""
        return tuple(self.mean)

    def recentre(self, mean: Sequence[float]) -> Mahalanobis:
        """This asset's detector with its reference level moved to ``mean`` (spread and
        correlation kept): a lasting change adopted (streams/adoption.py).

        >>> det = MahalanobisModel.fit(np.arange(20.0)[:, None], ("v",), 4).build()
        >>> det.recentre([100.0]).expected(), det.expected()[0] == 9.5
        ((100.0,), True)
        """
        level = [old if tracked else float(v)  # a tracked signal's reference is a change
                 for v, old, tracked in zip(mean, self.mean, self.model.tracked, strict=True)]
        return Mahalanobis(self.model, level, list(self.var))

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


def _running_sum(views: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start`` to ``stop − 1`` of each window in ``views`` (points, window, signals)
    summed left to right, as :func:`_ordered_sum` sums a window's column.

    >>> _running_sum(np.array([[[1.0], [2.0], [4.0]]]), 1, 3).tolist()
    [[6.0]]
    """
    acc = views[:, start, :].copy()
    for j in range(start + 1, stop):
        acc += views[:, j, :]
    return acc


def _view_features(views: np.ndarray, recent: int, tracked: np.ndarray) -> np.ndarray:
    """The features :meth:`Mahalanobis.score_many` scores, from ``views`` (points, window + 1,
    signals; the point last): the mean of the last ``recent`` rows, minus, for a ``tracked``
    signal, the mean of the rows before them — the same sums as ``Mahalanobis._features``.

    >>> w = np.array([[[1.0, 1.0], [3.0, 3.0], [5.0, 5.0], [7.0, 7.0]]])
    >>> _view_features(w, 2, np.array([False, True])).tolist()
    [[6.0, 4.0]]
    """
    k = views.shape[1]
    level = _running_sum(views, k - recent, k) / recent
    if not tracked.any():
        return level
    older = k - recent  # ≥ 1: with tracked signals ``recent`` is at most the window
    return np.where(tracked, level - _running_sum(views, 0, older) / older, level)


def window_features(rows: np.ndarray, window_size: int, recent: int,
                    tracked: Sequence[bool], lengths: Sequence[int] | None = None) -> np.ndarray:
    """The features of every training point that has a full window before it (inside its
    piece): what a :class:`Mahalanobis` with ``recent`` and ``tracked`` signals scores.

    >>> rows = np.arange(10.0)[:, None]  # a climb; the last window is 5 … 9
    >>> last = [window_features(rows, 4, 2, [t])[-1].tolist() for t in (False, True)]
    >>> last  # mean(8, 9); minus mean(5, 6, 7)
    [[8.5], [2.5]]
    """
    views = window_views(rows, window_size + 1, lengths).transpose(0, 2, 1)
    return _view_features(np.ascontiguousarray(views), recent, np.asarray(tracked, dtype=bool))


def _check_features(signals: Sequence[str], window_size: int, smooth: bool, recent: int,
                    track: Sequence[str]) -> tuple[str, ...]:
    """Refuse ``recent`` / ``track`` options that cannot be scored, saying why; the tracked
    signals as a tuple.

    >>> _check_features(("a", "b"), 4, False, 2, ["b"])
    ('b',)
    >>> _check_features(("a",), 4, False, 1, ["z"])
    Traceback (most recent call last):
    ...
    ValueError: track names z, which is not a signal of the model (a)
    """
    if isinstance(track, str):
        raise ValueError(f"track must be a list of signal names, got the string {track!r}")
    track = tuple(track)
    unknown = [t for t in track if t not in signals]
    if unknown:
        raise ValueError(f"track names {', '.join(unknown)}, which is not a signal of the "
                         f"model ({', '.join(signals)})")
    if len(set(track)) != len(track):
        raise ValueError(f"track names a signal twice: {', '.join(track)}")
    if not isinstance(recent, int) or isinstance(recent, bool):
        raise ValueError(f"recent must be a whole number of points, got {recent!r}")
    most = window_size if track else window_size + 1
    if not 1 <= recent <= most:
        raise ValueError(f"recent must be in [1, {most}] for a window of {window_size}"
                         f"{' with tracked signals (one older point at least)' if track else ''}"
                         f", got {recent}")
    if smooth and (recent > 1 or track):
        raise ValueError("smooth scores the whole window's mean; it does not combine with "
                         "recent or track (recent = window + 1 is smooth)")
    return track


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
