"""Typed records of the core: what flows in (readings) and out (anomalies, rejections).

Time is integer epoch milliseconds (``ts_ms``); timestamps are parsed once, at the edge.

>>> r = Reading(asset_id="pump-1", ts_ms=1_767_225_600_000, signals={"temp": 71.2})
>>> anomaly_key("inf-a", r.asset_id, r.ts_ms)
'inf-a/pump-1/1767225600000'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Reading:
    """One sensor reading of one asset at one instant."""

    asset_id: str
    ts_ms: int
    signals: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input that could not be accepted: the reason and the original bytes, for the dead-letter topic."""

    reason: str
    raw: bytes
    asset_id: str | None = None


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A scored point judged anomalous (SPEC §3). Keyed ``inference/asset/timestamp``."""

    inference_id: str
    asset_id: str
    ts_ms: int
    model_id: str
    model_version: int
    score: float
    severity: float
    sensitivity: int
    threshold: float
    contributions: Mapping[str, float] = field(default_factory=dict)
    filled: bool = False
    replay_id: str | None = None

    @property
    def key(self) -> str:
        return anomaly_key(self.inference_id, self.asset_id, self.ts_ms)


def anomaly_key(inference_id: str, asset_id: str, ts_ms: int) -> str:
    """The deterministic key of an anomaly: a replay overwrites instead of duplicating."""
    return f"{inference_id}/{asset_id}/{ts_ms}"


def anomaly_to_plain(a: Anomaly) -> dict[str, Any]:
    """An anomaly as plain JSON-able data, for state snapshots (not the wire record).

    >>> a = Anomaly("i", "p", 5, "m", 1, 9.0, 0.9, 70, 0.3, {"v": 1.0})
    >>> anomaly_from_plain(anomaly_to_plain(a)) == a
    True
    """
    return {
        "inference_id": a.inference_id, "asset_id": a.asset_id, "ts_ms": a.ts_ms,
        "model_id": a.model_id, "model_version": a.model_version, "score": float(a.score),
        "severity": float(a.severity), "sensitivity": a.sensitivity, "threshold": float(a.threshold),
        "contributions": {k: float(v) for k, v in a.contributions.items()},
        "filled": a.filled, "replay_id": a.replay_id,
    }


def anomaly_from_plain(d: Mapping[str, Any]) -> Anomaly:
    """The anomaly :func:`anomaly_to_plain` wrote."""
    return Anomaly(
        inference_id=str(d["inference_id"]), asset_id=str(d["asset_id"]), ts_ms=int(d["ts_ms"]),
        model_id=str(d["model_id"]), model_version=int(d["model_version"]),
        score=float(d["score"]), severity=float(d["severity"]), sensitivity=int(d["sensitivity"]),
        threshold=float(d["threshold"]),
        contributions={str(k): float(v) for k, v in d["contributions"].items()},
        filled=bool(d["filled"]), replay_id=d["replay_id"],
    )
