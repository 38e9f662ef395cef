"""Detectors: fitted models shared per inference, small online parts per asset.

>>> import numpy as np
>>> det = fit_detector("mahalanobis", np.random.default_rng(0).normal(size=(50, 2)), ("a", "b"), 4)
>>> model_from_dict(det.to_dict()) == det
True
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streams.detectors.base import DetectorModel, DetectorScore, OnlineDetector
from streams.detectors.mahalanobis import MahalanobisModel
from streams.detectors.zscore import WindowZScoreModel

__all__ = [
    "ALGORITHMS",
    "DetectorModel",
    "DetectorScore",
    "OnlineDetector",
    "fit_detector",
    "model_from_dict",
]

_KINDS: dict[str, Any] = {
    "zscore": WindowZScoreModel, "mahalanobis": MahalanobisModel,
    # imported on first use: River and what it loads cost ~0.8 s and ~90 MB per process,
    # which a worker or job scoring with the other kinds need not pay
    "river": "streams.detectors.river_family:RiverModel",
}
ALGORITHMS: frozenset[str] = frozenset(_KINDS)


def _kind(kind: Any) -> Any:
    """The model class of a detector ``kind`` (``ValueError`` for an unknown one)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown detector kind {kind!r}; known: {sorted(_KINDS)}")
    cls = _KINDS[kind]
    if isinstance(cls, str):
        module, name = cls.split(":")
        cls = _KINDS[kind] = getattr(importlib.import_module(module), name)
    return cls


def fit_detector(
    kind: str,
    rows: np.ndarray,
    signals: Sequence[str],
    window_size: int,
    options: Mapping[str, Any] | None = None,
    lengths: Sequence[int] | None = None,
) -> DetectorModel:
    """Fit the detector family ``kind`` on training rows (points × signals).

    ``lengths`` cuts the rows into pieces that are not contiguous in time (one per asset and
    training range): no window spans two of them. None: the rows are one piece.
    """
    cls = _kind(kind)
    accepted = set(inspect.signature(cls.fit).parameters) - {"cls", "rows", "signals",
                                                              "window_size", "lengths"}
    unknown = sorted(set(options or {}) - accepted)
    if unknown:
        raise ValueError(f"detector {kind!r} has no option {', '.join(unknown)}; "
                         f"it takes {', '.join(sorted(accepted)) or 'none'}")
    model: DetectorModel = cls.fit(rows, signals, window_size, **dict(options or {}),
                                   lengths=lengths)
    return model


def model_from_dict(d: Mapping[str, Any]) -> DetectorModel:
    """Rebuild a fitted detector model from its artifact form."""
    model: DetectorModel = _kind(d.get("kind")).from_dict(d)
    return model
