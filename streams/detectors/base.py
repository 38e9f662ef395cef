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


class BatchDetector(OnlineDetector, Protocol):
    """An online detector that can also score many points at once (streams/scoring.py uses
    it when ``batchable``: learning would change nothing between the points)."""

    @property
    def batchable(self) -> bool: ...

    def score_many(self, rows: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and contributions of ``rows[first:]``, each against the ``window_size``
        rows before it."""
        ...


class DetectorModel(Protocol):
    """The fitted, frozen part of a detector, shared by all assets of an inference."""

    kind: str
    signals: tuple[str, ...]
    window_size: int

    def build(self, state: Mapping[str, Any] | None = None) -> OnlineDetector: ...

    def to_dict(self) -> dict[str, Any]: ...


def check_training_rows(
    rows: np.ndarray, signals: Sequence[str], window_size: int, lengths: Sequence[int] | None = None
) -> None:
    """Refuse training rows a detector cannot be fitted on, saying why.

    ``lengths`` cuts the rows into pieces that are not contiguous in time (one per asset and
    training range, in order): a window never spans two pieces, so the longest must hold one.

    >>> check_training_rows(np.zeros((5, 2)), ("a", "b"), window_size=4)
    Traceback (most recent call last):
    ...
    ValueError: too few points (5) for a window of 4: need at least 6
    >>> check_training_rows(np.zeros((10, 1)), ("a",), window_size=4, lengths=(5, 5))
    Traceback (most recent call last):
    ...
    ValueError: too few consecutive points (at most 5 in one piece) for a window of 4: need at least 6
    """
    if rows.ndim != 2 or rows.shape[1] != len(signals):
        raise ValueError(f"expected rows of {len(signals)} signals, got shape {rows.shape}")
    if rows.shape[0] < window_size + 2:
        raise ValueError(
            f"too few points ({rows.shape[0]}) for a window of {window_size}: "
            f"need at least {window_size + 2}"
        )
    pieces = check_lengths(rows, lengths)
    if max(pieces) < window_size + 2:
        raise ValueError(
            f"too few consecutive points (at most {max(pieces)} in one piece) for a window of "
            f"{window_size}: need at least {window_size + 2}"
        )


def check_lengths(rows: np.ndarray, lengths: Sequence[int] | None) -> tuple[int, ...]:
    """The piece lengths of ``rows`` (one piece, all of them, when ``lengths`` is None).

    >>> check_lengths(np.zeros((4, 1)), None), check_lengths(np.zeros((4, 1)), [1, 3])
    ((4,), (1, 3))
    """
    if lengths is None:
        return (int(rows.shape[0]),)
    pieces = tuple(int(n) for n in lengths)
    if sum(pieces) != rows.shape[0] or any(n < 1 for n in pieces):
        raise ValueError(f"piece lengths {pieces} do not cut {rows.shape[0]} rows")
    return pieces


def window_views(rows: np.ndarray, k: int, lengths: Sequence[int] | None = None) -> np.ndarray:
    """Every run of ``k`` consecutive rows inside one piece, shape (runs, signals, k).

    Pieces shorter than ``k`` give none; no run spans two pieces.

    >>> rows = np.arange(7.0).reshape(7, 1)
    >>> window_views(rows, 3).shape, window_views(rows, 3, (4, 3))[:, 0].tolist()
    ((5, 1, 3), [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    """
    views = [
        np.lib.stride_tricks.sliding_window_view(piece, k, axis=0)
        for piece in np.split(rows, np.cumsum(check_lengths(rows, lengths))[:-1])
        if piece.shape[0] >= k
    ]
    if not views:
        return np.zeros((0, rows.shape[1], k))
    return np.concatenate(views)
