"""From severities to flags: one fault is one flagged run, and a lasting change ends one.

A point is anomalous when its severity reaches the sensitivity's threshold (SPEC §4). Taken
point by point, a fault whose severity hovers around the threshold flaps — flagged, not,
flagged — and a state that never returns to the training regime is flagged to the end of the
stream, because flagged points are not learnt. :class:`FlagPolicy` decides per asset, with
explicit state (:class:`FlagRun`), two rules; with the defaults both are off and a point is
flagged exactly when its severity reaches the threshold:

* **minimum duration** (``enter_points``): a run opens on the ``enter_points``-th consecutive
  point at or above the threshold (the ones before it are not flagged: a blip shorter than
  that is no fault);
* **hysteresis** (``exit_margin``): once open, the run goes on while the severity stays at or
  above ``threshold − exit_margin`` (one fault, one run, not a flapping one).

Both keep sensitivity's meaning: with the same severities, a higher sensitivity (a lower
threshold) flags a superset — each rule is monotone in the threshold (property-tested). A
model carries its policy (``Model.flags``, ``ModelParams.flags``); the scorer keeps each
asset's run in its state. A third rule, ``adopt_points``, lets a lasting steady change
become the asset's new normal (:mod:`streams.adoption`, which keeps its own per-asset state).

>>> policy = FlagPolicy(enter_points=2, exit_margin=0.1)
>>> run = FlagRun()
>>> [policy.step(run, sev, threshold=0.3).flagged for sev in (0.5, 0.1, 0.5, 0.5, 0.25, 0.1)]
[False, False, False, True, True, False]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FlagPolicy:
    """How severities become flags (the defaults: flagged iff severity ≥ threshold)."""

    #: consecutive points at or above the threshold before a run opens (1: at once)
    enter_points: int = 1
    #: an open run goes on while severity ≥ threshold − exit_margin (0: no hysteresis)
    exit_margin: float = 0.0
    #: points of a mostly abnormal episode after which a steady new level is adopted
    #: (0: never; streams/adoption.py)
    adopt_points: int = 0

    def __post_init__(self) -> None:
        if self.enter_points < 1:
            raise ValueError(f"enter_points must be ≥ 1, got {self.enter_points}")
        if not 0.0 <= self.exit_margin < 1.0:
            raise ValueError(f"exit_margin must be in [0, 1), got {self.exit_margin}")
        if self.adopt_points < 0:
            raise ValueError(f"adopt_points must be ≥ 0, got {self.adopt_points}")

    @property
    def is_plain(self) -> bool:
        """Whether every rule is off (a point is flagged iff its severity reaches the threshold)."""
        return self.enter_points == 1 and self.exit_margin == 0.0

    def step(self, run: FlagRun, severity: float, threshold: float) -> Flag:
        """Decide one point of an asset, in order, updating its ``run``.

        >>> FlagPolicy().step(FlagRun(), 0.3, threshold=0.3 + 1e-15).flagged  # the SPEC's ≥
        True
        """
        above = severity >= threshold - 1e-12
        if run.length:  # an open run
            if severity >= threshold - self.exit_margin - 1e-12:
                run.length += 1
                return FLAGGED
            # below threshold − margin, so below the threshold too: no new streak begins
            run.length = 0
            run.streak = 0
            return CLOSED
        if not above:
            run.streak = 0
            return NOT_FLAGGED
        run.streak += 1
        if run.streak < self.enter_points:
            return NOT_FLAGGED
        return self._open(run)

    def _open(self, run: FlagRun) -> Flag:
        run.length = 1
        run.streak = 0
        return FLAGGED

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"enter_points": self.enter_points, "exit_margin": self.exit_margin}
        if self.adopt_points:  # absent when off: artifacts written before it read the same
            d["adopt_points"] = self.adopt_points
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> FlagPolicy:
        """The policy of a model's parameters (absent keys: the defaults).

        >>> FlagPolicy.from_dict({"enter_points": 3}) == FlagPolicy(enter_points=3)
        True
        """
        d = d or {}
        unknown = sorted(set(d) - {"enter_points", "exit_margin", "adopt_points"})
        if unknown:
            raise ValueError(f"unknown flag policy field(s): {', '.join(unknown)}")
        return cls(enter_points=int(d.get("enter_points", 1)),
                   exit_margin=float(d.get("exit_margin", 0.0)),
                   adopt_points=int(d.get("adopt_points", 0)))


@dataclass(slots=True)
class FlagRun:
    """One asset's decision state: the open run's length (0: none), and how many points in a
    row have reached the threshold while no run was open."""

    length: int = 0
    streak: int = 0

    def snapshot(self) -> list[int]:
        return [self.length, self.streak]

    @classmethod
    def from_snapshot(cls, snap: Any) -> FlagRun:
        """A run from its snapshot (None, from state written before runs existed: none open).

        >>> FlagRun.from_snapshot([4, 0]), FlagRun.from_snapshot(None)
        (FlagRun(length=4, streak=0), FlagRun(length=0, streak=0))
        """
        if snap is None:
            return cls()
        length, streak = snap
        return cls(int(length), int(streak))


@dataclass(frozen=True, slots=True)
class Flag:
    """The decision on one point: flagged (an anomaly); the point closed a run."""

    flagged: bool
    closed: bool = False


FLAGGED = Flag(flagged=True)
NOT_FLAGGED = Flag(flagged=False)
CLOSED = Flag(flagged=False, closed=True)
