"""The detector protocol every assetwatch detector speaks (River's: score, then learn).

A detector comes in two parts, as configuration and logic do:

* a **fitted model** (:class:`DetectorModel`): frozen, shared by every asset of an inference,
  fitted offline on training data, stored as plain JSON in the model artifact;
* an **online detector** (:class:`OnlineDetector`): the small per-asset part built from the
  model and a resume snapshot; it scores a point against the sliding window of the points
  before it, then (unless the point was anomalous: the model is protected) learns it.

Snapshots are plain, JSON-serialisable data: tables store snapshots, never live objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streams.window import SlidingWindow


@dataclass(frozen=True, slots=True)
class DetectorScore:
    """A raw anomaly score (≥ 0, larger is more anomalous) and each signal's share of it."""

    score: float
    contributions: tuple[float, ...]


class OnlineDetector(Protocol):
    """The per-asset logic: score a point given the window before it, then learn it."""

    def score_one(self, x: Sequence[float], window: SlidingWindow) -> DetectorScore: ...

    def learn_one(self, x: Sequence[float], window: SlidingWindow) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


class DetectorModel(Protocol):
    """The fitted, frozen part of a detector, shared by all assets of an inference."""

    kind: str
    signals: tuple[str, ...]
    window_size: int

    def build(self, state: Mapping[str, Any] | None = None) -> OnlineDetector: ...

    def to_dict(self) -> dict[str, Any]: ...


def check_training_rows(rows: np.ndarray, signals: Sequence[str], window_size: int) -> None:
    """Refuse training rows a detector cannot be fitted on, saying why.

    >>> check_training_rows(np.zeros((5, 2)), ("a", "b"), window_size=4)
    Traceback (most recent call last):
    ...
    ValueError: too few points (5) for a window of 4: need at least 6
    """
    if rows.ndim != 2 or rows.shape[1] != len(signals):
        raise ValueError(f"expected rows of {len(signals)} signals, got shape {rows.shape}")
    if rows.shape[0] < window_size + 2:
        raise ValueError(
            f"too few points ({rows.shape[0]}) for a window of {window_size}: "
            f"need at least {window_size + 2}"
        )
