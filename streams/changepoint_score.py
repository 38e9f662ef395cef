"""SKAB's change-point score: NAB-style rewards for detecting regime changes in time.

SKAB's leaderboard scores change-point detection with the NAB-like metric of its authors'
``tsad`` library (``chp_score``; SKAB's README, "Evaluation protocol"). Here it is re-stated
from that description, without pandas:

* the predicted change points are the rows where the binary outlier prediction flips (and
  the first row, if it is predicted anomalous);
* every true change point opens a detection window ``[cp, cp + width]`` (60 s on SKAB); where
  a window reaches into the next one, the next one starts where the first ends;
* in a window only the **first** prediction counts: its reward falls along a tanh from
  ``A_tp`` at the window's start to ``A_fp`` at its end; a window with none costs ``A_fn``;
  every prediction outside all windows costs ``A_fp``;
* per profile (Standard, LowFP, LowFN), the sum over files is normalised to
  ``100 · (S − S_null) / (S_perfect − S_null)`` with ``S_null = A_fn · windows`` and
  ``S_perfect = A_tp · windows``.

>>> truth = [ChangePoints((10_000,), flips=(12_000, 90_000))]  # one found early, one false
>>> s = nab_scores(truth, width_ms=60_000)
>>> round(s.standard, 2), s.missed, s.false_positives
(93.95, 0, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: (A_tp, A_fp, A_fn) of each profile, as tsad's default table
PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, -0.11, -1.0),
    "low_fp": (1.0, -0.22, -1.0),
    "low_fn": (1.0, -0.11, -2.0),
}
_STEPS = 1000  # tsad samples its reward curve at 1,000 points


@dataclass(frozen=True, slots=True)
class ChangePoints:
    """One file's true change points and predicted ones (flips of the prediction), in ms."""

    truth: tuple[int, ...]
    flips: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NabScores:
    """The three profiles' normalised scores (100 perfect, 0 the null detector), the true
    change points no prediction fell near, and the predictions outside every window."""

    standard: float
    low_fp: float
    low_fn: float
    missed: int
    false_positives: int


def flips_of(ts_ms: Sequence[int] | np.ndarray,
             predicted: Sequence[bool] | np.ndarray) -> tuple[int, ...]:
    """The times at which a binary prediction changes value, and the first row's if it is
    predicted anomalous (SKAB's notebooks: ``|diff|``, its first value set to the first
    prediction).

    >>> flips_of([1, 2, 3, 4, 5], [False, True, True, False, False])
    (2, 4)
    >>> flips_of([1, 2, 3], [True, True, False])
    (1, 3)
    """
    pred = np.asarray(predicted, dtype=bool)
    at = np.nonzero(pred[1:] != pred[:-1])[0] + 1
    first = (0,) if len(pred) and pred[0] else ()
    return tuple(int(ts_ms[i]) for i in (*first, *at.tolist()))


def windows_of(truth: Sequence[int], width_ms: int) -> list[tuple[int, int]]:
    """Each change point's detection window ``[cp, cp + width]``, a later one cut to start
    where an earlier one it overlaps ends.

    >>> windows_of([0, 30, 200], 60)
    [(0, 60), (60, 90), (200, 260)]
    """
    windows = [(t, t + width_ms) for t in sorted(truth)]
    for i in range(len(windows) - 1):
        if windows[i][1] >= windows[i + 1][0]:
            windows[i + 1] = (windows[i][1], windows[i + 1][1])
    return windows


def reward(start: int, at: int, end: int, a_tp: float, a_fp: float) -> float:
    """The reward of a first detection at ``at`` in the window ``[start, end]``: ``a_tp`` at
    the start, falling along a tanh to ``a_fp`` at the end (tsad's curve, 1,000 steps).

    >>> reward(0, 0, 60, 1.0, -0.11), round(reward(0, 30, 60, 1.0, -0.11), 3), reward(0, 60, 60, 1.0, -0.11)
    (1.0, 0.444, -0.11)
    """
    if end <= start:  # a window cut to nothing by an earlier one (a repeated change point)
        return a_tp
    step = min(int((at - start) / (end - start) * _STEPS), _STEPS - 1)
    x = -math.pi / 2 + step * math.pi / (_STEPS - 1)
    half = (a_tp - a_fp) / 2
    return -half * math.tanh(x) / math.tanh(math.pi / 2) + half + a_fp


def nab_scores(files: Iterable[ChangePoints], width_ms: int) -> NabScores:
    """SKAB's change-point score over ``files`` with detection windows of ``width_ms``."""
    totals = dict.fromkeys(PROFILES, 0.0)
    n_windows = missed = false_positives = 0
    for f in files:
        windows = windows_of(f.truth, width_ms)
        flips = sorted(f.flips)
        n_windows += len(windows)
        found: list[tuple[int, int, int]] = []
        outside = 0
        for t in flips:
            if not any(a <= t <= b for a, b in windows):
                outside += 1
        for a, b in windows:
            first = next((t for t in flips if a <= t <= b), None)
            if first is None:
                missed += 1
            else:
                found.append((a, first, b))
        false_positives += outside
        for name, (a_tp, a_fp, a_fn) in PROFILES.items():
            totals[name] += a_fp * outside + a_fn * (len(windows) - len(found))
            totals[name] += sum(reward(a, t, b, a_tp, a_fp) for a, t, b in found)
    scores = {}
    for name, (a_tp, _a_fp, a_fn) in PROFILES.items():
        null, perfect = a_fn * n_windows, a_tp * n_windows
        scores[name] = 100.0 * (totals[name] - null) / (perfect - null) if n_windows else 0.0
    return NabScores(scores["standard"], scores["low_fp"], scores["low_fn"], missed,
                     false_positives)
