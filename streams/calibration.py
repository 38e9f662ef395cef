"""Calibration: raw detector scores → severity in [0, 1], and the sensitivity rule.

Severity is fitted on the scores of the training data: scores at or below the training
median have severity 0; above it severity rises as ``1 − exp(−(s − median) / β)``, with β set
so that the training score quantile ``q_ref`` (default 0.999) has severity ``1 − 0.7 = 0.3``.
So the default sensitivity 70 flags about the training data's top 0.1 % and, because
severity is non-decreasing in the score, a higher sensitivity flags a superset of what a
lower one flags (SPEC §4).

>>> cal = Calibrator.fit([0.5, 1.0, 1.0, 1.5, 2.0, 3.0])
>>> cal.severity(0.2), round(cal.severity(cal.median + cal.beta), 3)
(0.0, 0.632)
>>> is_anomalous(0.3, sensitivity=70), is_anomalous(0.29, sensitivity=70)
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_SENSITIVITY = 70
_REF_SEVERITY = 0.3


def threshold_for(sensitivity: int) -> float:
    """The severity at and above which a point is anomalous: ``1 − sensitivity / 100``."""
    if not 1 <= sensitivity <= 100:
        raise ValueError(f"sensitivity must be between 1 and 100, got {sensitivity}")
    return 1.0 - sensitivity / 100.0


def is_anomalous(severity: float, sensitivity: int) -> bool:
    # a tiny tolerance keeps 1 − 70/100 = 0.30000000000000004 from excluding severity 0.3
    return severity >= threshold_for(sensitivity) - 1e-12


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Maps a raw score to a severity in [0, 1], fitted on training scores."""

    median: float
    beta: float

    @classmethod
    def fit(cls, scores: Sequence[float] | np.ndarray, q_ref: float = 0.999) -> Calibrator:
        arr = np.asarray(scores, dtype=float)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            raise ValueError("cannot calibrate on no finite scores")
        median = float(np.median(arr))
        ref = float(np.quantile(arr, q_ref))
        spread = ref - median
        if spread <= 0:
            spread = max(abs(median), 1.0) * 1e-3
        beta = spread / -math.log(1.0 - _REF_SEVERITY)
        return cls(median=median, beta=beta)

    def severity(self, score: float) -> float:
        if not score > self.median:  # also maps NaN to 0
            return 0.0
        return 1.0 - math.exp(-(score - self.median) / self.beta)

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "beta": self.beta}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibrator:
        return cls(median=float(d["median"]), beta=float(d["beta"]))
