"""Detectors: fitted models shared per inference, small online parts per asset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.detectors.base import DetectorModel, DetectorScore, OnlineDetector
from streams.detectors.zscore import WindowZScoreModel

__all__ = ["DetectorModel", "DetectorScore", "OnlineDetector", "model_from_dict"]

_KINDS: dict[str, Any] = {"zscore": WindowZScoreModel}


def model_from_dict(d: Mapping[str, Any]) -> DetectorModel:
    """Rebuild a fitted detector model from its artifact form."""
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown detector kind {kind!r}; known: {sorted(_KINDS)}")
    model: DetectorModel = _KINDS[kind].from_dict(d)
    return model
