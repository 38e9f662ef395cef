"""An inference: a model applied to a telemetry topic with a sensitivity (SPEC §5.1).

>>> cfg = InferenceConfig.from_dict({"inference_id": "pumps", "model_id": "m1",
...                                  "topic": "telemetry"})
>>> cfg.sensitivity, cfg.wants("pump-1")
(70, True)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.alerts import AlertConfig
from streams.calibration import DEFAULT_SENSITIVITY, threshold_for

ClockMode = Literal["wall", "event"]
CLOCK_MODES: tuple[ClockMode, ...] = ("wall", "event")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class InferenceConfig:
    """Which model scores which topic's assets, from when, how sensitively, on which clock.

    ``clock``: ``wall`` (live operation: the slot ``t`` is due at ``t + Δ + D`` on the wall
    clock) or ``event`` (accelerated and historical feeds: due once a point of the same
    asset stamped ``t + Δ + D`` or later has arrived; after ``idle_timeout_ms`` of wall time
    with no point of an asset, its pending points are finalised — its clock moves just far
    enough to make them due, not on into empty time, so a feed that pauses and resumes is
    never late for it). Event time is per asset: assets are independent machines, and one that
    lags (a slow gateway, per-asset batches) must not make another's points late.
    ``max_fill_points``: the longest run of missing slots the model's fill
    method fills; a longer one is reported as a gap.
    ``model_version``: the version scored with; ``None`` (a worker's declaration file) means
    the latest, and the control plane pins the latest Completed one when it accepts a create.
    ``alerts`` and ``hooks``: the alert configurations (SPEC §7) and the names of the hooks
    their notifications go to.
    """

    inference_id: str
    model_id: str
    topic: str
    sensitivity: int = DEFAULT_SENSITIVITY
    start_ms: int = 0
    delay_ms: int = 0
    assets: frozenset[str] = field(default_factory=frozenset)
    clock: ClockMode = "wall"
    idle_timeout_ms: int = 5_000
    max_fill_points: int = 5
    model_version: int | None = None
    alerts: tuple[AlertConfig, ...] = ()
    hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.inference_id):
            raise ValueError(
                f"inference id {self.inference_id!r} must be 1-128 letters, digits, '.', '_' or '-'"
            )
        threshold_for(self.sensitivity)  # validates the range
        if self.delay_ms < 0:
            raise ValueError(f"data delay offset must be ≥ 0, got {self.delay_ms} ms")
        if self.clock not in CLOCK_MODES:
            raise ValueError(f"clock must be one of {CLOCK_MODES}, got {self.clock!r}")
        if self.idle_timeout_ms < 0:
            raise ValueError(f"idle timeout must be ≥ 0 ms, got {self.idle_timeout_ms}")
        if self.max_fill_points < 0:
            raise ValueError(f"max fill points must be ≥ 0, got {self.max_fill_points}")
        names = [a.name for a in self.alerts]
        if len(names) != len(set(names)):
            raise ValueError("alert configuration names must be unique within an inference")

    def wants(self, asset_id: str) -> bool:
        """Whether this inference scores the asset (no filter: every asset)."""
        return not self.assets or asset_id in self.assets

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InferenceConfig:
        known = {"inference_id", "model_id", "topic", "sensitivity", "start_ms", "delay_ms",
                 "assets", "clock", "idle_timeout_ms", "max_fill_points", "model_version",
                 "alerts", "hooks"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown inference field(s): {', '.join(sorted(unknown))}")
        return cls(
            inference_id=str(d["inference_id"]),
            model_id=str(d["model_id"]),
            topic=str(d["topic"]),
            sensitivity=int(d.get("sensitivity", DEFAULT_SENSITIVITY)),
            start_ms=int(d.get("start_ms", 0)),
            delay_ms=int(d.get("delay_ms", 0)),
            assets=frozenset(d.get("assets", ())),
            clock=d.get("clock", "wall"),
            idle_timeout_ms=int(d.get("idle_timeout_ms", 5_000)),
            max_fill_points=int(d.get("max_fill_points", 5)),
            model_version=None if d.get("model_version") is None else int(d["model_version"]),
            alerts=tuple(AlertConfig.from_dict(a) for a in d.get("alerts", ())),
            hooks=tuple(str(h) for h in d.get("hooks", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "inference_id": self.inference_id,
            "model_id": self.model_id,
            "topic": self.topic,
            "sensitivity": self.sensitivity,
            "start_ms": self.start_ms,
            "delay_ms": self.delay_ms,
            "assets": sorted(self.assets),
            "clock": self.clock,
            "idle_timeout_ms": self.idle_timeout_ms,
            "max_fill_points": self.max_fill_points,
            "model_version": self.model_version,
            "alerts": [a.to_dict() for a in self.alerts],
            "hooks": list(self.hooks),
        }
