"""A lasting change becomes the new normal: adoption of a steady new level, never of a fault.

Flagged points are not learnt (the model is protected from what it flags), so a state that
never returns to the training regime — a pump run at a new operating point after a repair, a
recalibrated sensor — would be flagged to the end of the stream. A model whose flag policy
sets ``adopt_points`` (``model train --adopt-after N``; 0, the default, is off) lets such a
regime become the asset's new normal, in a bounded and visible way. Per asset an
:class:`AdoptionWatch` follows the current *episode*:

1. **An episode** begins at an abnormal point — severity at or above
   :data:`ABNORMAL_SEVERITY`, the default sensitivity's threshold, whatever the inference's
   sensitivity — and ends when the asset has been normal for ``window_size`` points in a row
   (it came back). The watch keeps its length, how many of its points were abnormal and the
   sum of its rows.
2. **Lasting**: every ``adopt_points`` points of an episode in which at least
   :data:`ABNORMAL_SHARE` of the points were abnormal, the level is checked. A fault shorter
   than ``adopt_points`` is never learnt.
3. **A level shift, not a fault** (:func:`recentred`): the detector re-centred on the
   episode's mean (each signal's reference level moved there; spread and the signals'
   correlation kept) must find the last window normal — at most :data:`STEADY_TOLERANCE`
   of its points abnormal. A drift (its recent points are beyond the episode's mean), a
   noise burst or a variance change (spread, not level), a stuck sensor (flat-line evidence
   does not depend on the level) or a correlation break stays abnormal after re-centring, and
   goes on being flagged; the next check comes ``adopt_points`` points later.
4. **Visible**: the scorer replaces the asset's detector with the re-centred one, closes its
   flag run and the episode, and reports an :class:`Adoption` (the worker puts it on the
   events topic, kind ``regime_adopted``, with the expected values before and after).
5. **Back home**: an asset on an adopted level whose episode is steady at the *trained*
   level again (checked every ``window_size`` points of an episode) returns to it at once —
   an :class:`Adoption` with ``restored`` set (event kind ``regime_restored``). A fault that
   lasted long enough to be adopted is then not followed by false alarms when it ends.

Adoption does not depend on the inference's sensitivity, so every sensitivity sees the same
scores and a higher one still flags a superset of a lower one's points.

>>> import numpy as np
>>> from streams.detectors.mahalanobis import MahalanobisModel
>>> from streams.calibration import Calibrator
>>> rng = np.random.default_rng(0)
>>> train = rng.normal(size=(2000, 1))
>>> det = MahalanobisModel.fit(train, ("v",), window_size=16).build()
>>> cal = Calibrator.fit([det.score_one((v,), window_of(train[i - 16:i])).score
...                       for i, v in enumerate(train[16:, 0], 16)])
>>> shifted = rng.normal(size=(16, 1)) + 8.0  # a steady new level
>>> recentred(det, [8.0], shifted, cal) is not None
True
>>> ramp = np.linspace(0.0, 40.0, 16)[:, None]  # a fast drift is no new level
>>> recentred(det, ramp.mean(axis=0).tolist(), ramp, cal) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.calibration import DEFAULT_SENSITIVITY, Calibrator, threshold_for
from streams.detectors import OnlineDetector
from streams.window import SlidingWindow

#: a point is abnormal (for adoption) at this severity: the default sensitivity's threshold
ABNORMAL_SEVERITY = threshold_for(DEFAULT_SENSITIVITY) - 1e-12
#: the share of an episode's points that must be abnormal for its level to be checked
ABNORMAL_SHARE = 0.25
#: the share of the last window that may still be abnormal against the adopted level
STEADY_TOLERANCE = 0.1


@dataclass(frozen=True, slots=True)
class Adoption:
    """A lasting steady change adopted as an asset's new normal after the point ``ts_ms``."""

    ts_ms: int
    #: the episode's length when it was adopted
    points: int
    expected_before: tuple[float, ...]
    expected_after: tuple[float, ...]
    #: back to the trained level (after an earlier adoption)
    restored: bool = False

    def to_dict(self, signals: Sequence[str]) -> dict[str, Any]:
        """The event's payload: each signal's expected value before and after.

        >>> d = Adoption(5, 64, (1.0,), (3.0,)).to_dict(("v",))
        >>> d["kind"], d["points"], d["expected_before"], d["expected_after"]
        ('regime_adopted', 64, {'v': 1.0}, {'v': 3.0})
        """
        return {
            "kind": "regime_restored" if self.restored else "regime_adopted",
            "ts": self.ts_ms,
            "points": self.points,
            "expected_before": dict(zip(signals, self.expected_before, strict=True)),
            "expected_after": dict(zip(signals, self.expected_after, strict=True)),
        }

    def record(self, inference_id: str, asset_id: str, signals: Sequence[str],
               at_ms: int) -> dict[str, Any]:
        """The status event a worker puts on the events topic (schemas/status-event.v1.json).

        >>> Adoption(5, 64, (1.0,), (3.0,), restored=True).record("inf", "pump-1", ("v",), 9)["kind"]
        'regime_restored'
        """
        return {**self.to_dict(signals), "inference_id": inference_id, "asset_id": asset_id,
                "at": at_ms}


@dataclass(slots=True)
class AdoptionWatch:
    """One asset's current episode of abnormal points (``points == 0``: none).

    >>> watch = AdoptionWatch()
    >>> [watch.step((9.0,), abnormal=a, adopt_points=4, calm_points=2)
    ...  for a in (True, True, False, True)]
    [False, False, False, True]
    >>> watch.mean()
    [9.0]
    >>> watch.step((0.0,), False, 4, 2), watch.step((0.0,), False, 4, 2), watch.points
    (False, False, 0)
    """

    points: int = 0
    abnormal: int = 0
    #: normal points in a row (the episode ends at ``calm_points``)
    calm: int = 0
    sums: list[float] = field(default_factory=list)
    #: whether the asset runs on an adopted level (not the trained one)
    adopted: bool = False

    def step(self, row: Sequence[float], abnormal: bool, adopt_points: int,
             calm_points: int) -> bool:
        """Take the next scored point; whether the episode's level is due for a check."""
        if not self.points:
            if not abnormal:
                return False
            self.sums = [0.0] * len(row)
        self.points += 1
        self.sums = [s + v for s, v in zip(self.sums, row, strict=True)]
        if abnormal:
            self.abnormal += 1
            self.calm = 0
        else:
            self.calm += 1
            if self.calm >= calm_points:
                self.reset()
                return False
        return self.points % adopt_points == 0 and \
            self.abnormal >= ABNORMAL_SHARE * self.points

    def return_due(self, window_size: int) -> bool:
        """Whether to check if an asset on an adopted level is back at the trained one."""
        return self.adopted and self.points > 0 and self.points % window_size == 0

    def mean(self) -> list[float]:
        """Each signal's mean over the episode."""
        return [s / self.points for s in self.sums]

    def reset(self) -> None:
        self.points = self.abnormal = self.calm = 0
        self.sums = []

    def snapshot(self) -> list[Any] | None:
        if not self.points and not self.adopted:
            return None
        return [self.points, self.abnormal, self.calm, list(self.sums), self.adopted]

    @classmethod
    def from_snapshot(cls, snap: Any) -> AdoptionWatch:
        """A watch from its snapshot (None: no episode, also for state written before it).

        >>> AdoptionWatch.from_snapshot([3, 2, 1, [6.0], True])
        AdoptionWatch(points=3, abnormal=2, calm=1, sums=[6.0], adopted=True)
        >>> AdoptionWatch.from_snapshot(None) == AdoptionWatch()
        True
        """
        if snap is None:
            return cls()
        points, abnormal, calm, sums, adopted = snap
        return cls(int(points), int(abnormal), int(calm), [float(v) for v in sums],
                   bool(adopted))


def can_adopt(detector: OnlineDetector) -> bool:
    """Whether a detector's level can be re-centred (the numpy families; not ``river``)."""
    return hasattr(detector, "recentre")


def recentred(detector: OnlineDetector, level: Sequence[float], rows: np.ndarray,
              calibrator: Calibrator) -> OnlineDetector | None:
    """The detector re-centred on ``level`` if the last window's points (``rows``, oldest
    first) are normal against it — at most :data:`STEADY_TOLERANCE` of them abnormal, each
    scored against the window of all of them — else None."""
    if not can_adopt(detector) or len(rows) < 2:
        return None
    candidate: OnlineDetector = detector.recentre(level)  # type: ignore[attr-defined]
    window = window_of(rows)
    abnormal = sum(
        calibrator.severity(candidate.score_one(tuple(row), window).score) >= ABNORMAL_SEVERITY
        for row in rows.tolist()
    )
    if abnormal > STEADY_TOLERANCE * len(rows):
        return None
    return candidate


def window_of(rows: np.ndarray) -> SlidingWindow:
    """A full sliding window holding ``rows`` (oldest first)."""
    return SlidingWindow(len(rows), rows.shape[1], [tuple(r) for r in rows.tolist()])
