"""Calibration: raw detector scores → severity in [0, 1], and the sensitivity rule.

Severity measures how rare a score is on the training data, in decades of exceedance
probability ``d = −log₁₀ p(score)``, where ``p(score)`` is the share of training scores above
``score``: ``severity = d / 10`` up to 9 decades (severity 0.9), and above that
``0.9 + 0.1 · x / (1 + x)`` with ``x = d − 9`` (the same slope at 9 decades, then ever
flatter, 1 never reached), so scores far beyond anything seen in training keep their order
instead of all sitting at 1:

* in the body (up to the training quantile ``q_tail``, 0.9) ``p`` is the empirical one, from
  quantile knots (log ``p`` interpolated linearly between them);
* in the tail, where training has too few points to count, ``p`` falls exponentially,
  ``p = (1 − q_tail) · exp(−(score − u) / β)`` with ``u`` the ``q_tail`` quantile and ``β`` the
  mean excess of the training scores over ``u`` (the exponential tail's maximum-likelihood fit).

So a point is anomalous at sensitivity ``s`` ≥ 10 (``severity ≥ 1 − s/100``, SPEC §4) when its
score is rarer than ``p = 10^−(10 − s/10)`` of training: sensitivity 90 flags about the top
10 % of training scores, 80 the top 1 %, the default 70 the top 0.1 %, 60 the top 0.01 %;
sensitivities 1–9 ask for 10–18 decades (``x = (0.1 − s/100) / (s/100)``). Severity is
non-decreasing in the score, so a higher sensitivity flags a superset of what a lower one
flags, on the same data; and it is strictly increasing above the training body, so two
scores there keep their order (up to the tail model's own precision).

>>> import numpy as np
>>> cal = Calibrator.fit(np.random.default_rng(0).exponential(size=10_000))
>>> [round(cal.severity(s), 2) for s in (0.0, 2.3, 4.6, 6.9)]  # p ≈ 1, 0.1, 0.01, 0.001
[0.0, 0.1, 0.2, 0.3]
>>> [round(severity_of_decades(d), 3) for d in (9, 10, 19, 1000)]  # beyond 9 decades: ranked
[0.9, 0.95, 0.991, 1.0]
>>> severity_of_decades(1000) < severity_of_decades(2000) < 1.0
True
>>> is_anomalous(0.3, sensitivity=70), is_anomalous(0.29, sensitivity=70)
(True, False)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_SENSITIVITY = 70
DECADES = 10.0  # severity 1 ↔ a score rarer than 1e-10 of training
_BODY_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_MIN_TAIL_SCALE = 1e-12
_LN10 = math.log(10.0)


#: decades of exceedance up to which severity is linear (d / 10)
_LINEAR_DECADES = 9.0


def severity_of_decades(decades: float) -> float:
    """Severity of a score rarer than ``10^−decades`` of training: ``d / 10`` up to 9 decades,
    then ``0.9 + 0.1 · x / (1 + x)``, ``x = d − 9`` (continuous, same slope, never 1).

    >>> severity_of_decades(3.0), severity_of_decades(-1.0)
    (0.3, 0.0)
    """
    if decades <= 0.0:
        return 0.0
    if decades <= _LINEAR_DECADES:
        return decades / DECADES
    x = decades - _LINEAR_DECADES
    return _LINEAR_DECADES / DECADES + (1.0 - _LINEAR_DECADES / DECADES) * x / (1.0 + x)


def threshold_for(sensitivity: int) -> float:
    """The severity at and above which a point is anomalous: ``1 − sensitivity / 100``.

    >>> threshold_for(70)
    0.30000000000000004
    """
    if not 1 <= sensitivity <= 100:
        raise ValueError(f"sensitivity must be between 1 and 100, got {sensitivity}")
    return 1.0 - sensitivity / 100.0


def is_anomalous(severity: float, sensitivity: int) -> bool:
    """Whether a severity is at or above the sensitivity's threshold.

    >>> is_anomalous(0.5, 50), is_anomalous(0.49, 50)
    (True, False)
    """
    # a tiny tolerance keeps 1 − 70/100 = 0.30000000000000004 from excluding severity 0.3
    return severity >= threshold_for(sensitivity) - 1e-12


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Maps a raw score to a severity in [0, 1], fitted on training scores.

    ``knots`` are training-score quantiles (non-decreasing), ``log_p`` the natural log of the
    share of training scores above each, and ``tail_scale`` the exponential tail's β.
    """

    knots: tuple[float, ...]
    log_p: tuple[float, ...]
    tail_scale: float

    @classmethod
    def fit(cls, scores: Sequence[float] | np.ndarray, q_tail: float = 0.9) -> Calibrator:
        """Fit on (held-out or training) scores; non-finite scores are ignored.

        >>> Calibrator.fit([1.0, 1.0, 1.0]).severity(1.0)  # constant scores: no error
        0.0
        """
        arr = np.asarray(scores, dtype=float)
        arr = np.sort(arr[np.isfinite(arr)])
        if arr.size == 0:
            raise ValueError("cannot calibrate on no finite scores")
        levels = [lv for lv in _BODY_LEVELS if lv < q_tail] + [q_tail]
        knots = np.quantile(arr, levels)
        knots = np.maximum.accumulate(knots)  # guard against rounding in np.quantile
        log_p = [math.log(1.0 - lv) for lv in levels]
        u = float(knots[-1])
        excess = arr[arr > u] - u
        scale = float(excess.mean()) if excess.size else 0.0
        if not scale > _MIN_TAIL_SCALE:
            scale = max(abs(u), 1.0) * 1e-3
        return cls(
            knots=tuple(float(k) for k in knots), log_p=tuple(log_p), tail_scale=scale
        )

    def exceedance(self, score: float) -> float:
        """The estimated share of training scores above ``score`` (1 for NaN).

        >>> cal = Calibrator.fit(np.arange(100.0))
        >>> round(cal.exceedance(49.5), 2), cal.exceedance(-5.0)
        (0.5, 1.0)
        """
        return math.exp(self._log_p(score))

    def _log_p(self, score: float) -> float:
        knots = self.knots
        if not score > knots[0]:  # also maps NaN to p = 1
            return 0.0 if math.isnan(score) else self.log_p[0]
        last = knots[-1]
        if score >= last:
            return self.log_p[-1] - (score - last) / self.tail_scale
        k = bisect.bisect_right(knots, score) - 1
        lo, hi = knots[k], knots[k + 1]
        if hi <= lo:
            return self.log_p[k + 1]
        t = (score - lo) / (hi - lo)
        return self.log_p[k] + t * (self.log_p[k + 1] - self.log_p[k])

    def severity(self, score: float) -> float:
        """Severity in [0, 1), non-decreasing in the score; NaN scores have severity 0."""
        return severity_of_decades(-self._log_p(score) / _LN10)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "quantile-tail",
            "knots": list(self.knots),
            "log_p": list(self.log_p),
            "tail_scale": self.tail_scale,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibrator:
        if d.get("kind") != "quantile-tail":
            raise ValueError(f"unknown calibration kind {d.get('kind')!r}")
        return cls(
            knots=tuple(float(v) for v in d["knots"]),
            log_p=tuple(float(v) for v in d["log_p"]),
            tail_scale=float(d["tail_scale"]),
        )


def sensitivity_for_far(
    calibrator: Calibrator, heldout_scores: Sequence[float] | np.ndarray, target_far: float
) -> tuple[int, float]:
    """The highest sensitivity (1–100) whose false-alarm rate on held-out normal scores is at
    most ``target_far`` (a probability), and that rate; sensitivity 1 and its rate when even
    it exceeds the target.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> cal = Calibrator.fit(rng.exponential(size=5_000))
    >>> s, far = sensitivity_for_far(cal, rng.exponential(size=5_000), target_far=0.01)
    >>> s, far <= 0.01
    (79, True)
    """
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"target false-alarm probability must be in [0, 1], got {target_far}")
    arr = np.asarray(heldout_scores, dtype=float)
    if arr.size == 0:
        raise ValueError("no held-out scores to measure the false-alarm rate on")
    sev = np.array([calibrator.severity(float(s)) for s in arr])
    rate = 1.0
    for sensitivity in range(100, 0, -1):
        rate = float(np.mean(sev >= threshold_for(sensitivity) - 1e-12))
        if rate <= target_far:
            return sensitivity, rate
    return 1, rate
