"""Point-wise evaluation of binary anomaly predictions against labels (SKAB's formulas).

Counts are pooled: add the :class:`Confusion` of each file, then read the rates off the sum.

* precision = TP / (TP + FP), recall = TP / (TP + FN);
* F1 = TP / (TP + (FP + FN) / 2), the harmonic mean of precision and recall;
* FAR = FP / (FP + TN) × 100 % (false-alarm rate), MAR = FN / (FN + TP) × 100 % (missed-alarm
  rate). A rate whose denominator is zero is 0.

>>> a = confusion([0, 0, 1, 1], [0, 1, 1, 0])
>>> b = confusion([1, 1, 0], [1, 1, 0])
>>> pooled = a + b
>>> pooled
Confusion(tp=3, fp=1, tn=2, fn=1)
>>> round(pooled.f1, 3), round(pooled.far, 1), round(pooled.mar, 1)
(0.75, 33.3, 25.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Confusion:
    """True/false positives and negatives of point-wise predictions."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn
        )

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing was flagged.

        >>> Confusion(tp=3, fp=1).precision
        0.75
        """
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when there was nothing to find.

        >>> Confusion(tp=1, fn=3).recall
        0.25
        """
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """TP / (TP + (FP + FN) / 2).

        >>> Confusion(tp=2, fp=1, fn=1).f1
        0.6666666666666666
        """
        return _ratio(self.tp, self.tp + (self.fp + self.fn) / 2)

    @property
    def far(self) -> float:
        """False-alarm rate in percent: FP / (FP + TN) × 100.

        >>> Confusion(fp=1, tn=3).far
        25.0
        """
        return 100.0 * _ratio(self.fp, self.fp + self.tn)

    @property
    def mar(self) -> float:
        """Missed-alarm rate in percent: FN / (FN + TP) × 100.

        >>> Confusion(tp=3, fn=1).mar
        25.0
        """
        return 100.0 * _ratio(self.fn, self.fn + self.tp)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def confusion(
    labels: Sequence[int] | Sequence[bool] | np.ndarray,
    predicted: Sequence[int] | Sequence[bool] | np.ndarray,
) -> Confusion:
    """Point-wise confusion counts of binary predictions against binary labels.

    >>> confusion([1, 0, 1, 0], [1, 1, 0, 0])
    Confusion(tp=1, fp=1, tn=1, fn=1)
    """
    y = np.asarray(labels).astype(bool)
    p = np.asarray(predicted).astype(bool)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in shape")
    return Confusion(
        tp=int(np.sum(y & p)),
        fp=int(np.sum(~y & p)),
        tn=int(np.sum(~y & ~p)),
        fn=int(np.sum(y & ~p)),
    )


def pooled(parts: Iterable[Confusion]) -> Confusion:
    """The sum of several files' confusion counts (SKAB pools before computing rates).

    >>> pooled([Confusion(tp=1), Confusion(fn=2)]).f1
    0.5
    """
    total = Confusion()
    for part in parts:
        total = total + part
    return total
