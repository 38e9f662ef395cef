"""An inference: a model applied to a telemetry topic with a sensitivity (SPEC §5.1).

>>> cfg = InferenceConfig.from_dict({"inference_id": "pumps", "model_id": "m1",
...                                  "topic": "telemetry"})
>>> cfg.sensitivity, cfg.wants("pump-1")
(70, True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import schemas
from streams.alerts import AlertConfig
from streams.calibration import DEFAULT_SENSITIVITY

#: the longest run of missing slots an inference fills unless told otherwise
DEFAULT_MAX_FILL_POINTS = 5

ClockMode = Literal["wall", "event"]
CLOCK_MODES: tuple[ClockMode, ...] = ("wall", "event")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: a Kafka topic name (Kafka's own rule)
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

# --- bounds of an inference's settings (docs/control.md, "Bounds"): checked here, once, for
# the CLI, the REST API and the control topic alike --------------------------------------------
_DAY_MS: Final = 86_400_000
#: the data delay offset: a week covers any gateway's store-and-forward; more is a typo
MAX_DELAY_MS: Final = 7 * _DAY_MS
#: the idle timeout of the event clock
MAX_IDLE_TIMEOUT_MS: Final = 7 * _DAY_MS
#: the start: from the epoch (on the event clock, 0 means "from the feed's first point") to
#: before 2100-01-01, the end of the timestamps the edge decoder accepts (streams/decode.py):
#: a later start could never be reached
MAX_START_MS: Final = 4_102_444_800_000
#: the longest run of missing slots filled (each one is a point made up)
MAX_FILL_POINTS: Final = 10_000
#: model versions are positive and fit a signed 32-bit integer
MAX_MODEL_VERSION: Final = 2**31 - 1
#: assets in one inference's filter (SPEC §10: 10,000 assets per worker)
MAX_ASSETS: Final = 10_000
_ASSET_ID: Final = schemas.load("telemetry.v1")["$defs"]["asset_id"]
_ASSET_ID_RE: Final = re.compile(_ASSET_ID["pattern"])


def whole_number(value: Any, what: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, or ``ValueError`` saying what is wrong with it.

    JSON gives whole numbers as ints, or as floats beyond 64 bits (``1e300``); booleans,
    strings, fractions and non-finite numbers are refused, not converted.

    >>> whole_number(5.0, "x", 0, 10)
    5
    >>> whole_number(1e300, "data delay offset (ms)", 0, 604_800_000)
    Traceback (most recent call last):
    ...
    ValueError: data delay offset (ms) must be from 0 to 604800000, got 1e+300
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{what} must be from {low} to {high}, got {value!r}")
        if not value.is_integer():
            raise ValueError(f"{what} must be a whole number, got {value!r}")
        value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{what} must be from {low} to {high}, got {value!r}")
    return value


def delay_ms_from_seconds(seconds: float) -> int:
    """A data delay offset given in seconds (the CLI's ``--delay``), in ms, within bounds.

    >>> delay_ms_from_seconds(2.5)
    2500
    >>> delay_ms_from_seconds(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: data delay offset must be a number of seconds from 0 to 604800, got nan
    """
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DELAY_MS / 1000:
        raise ValueError(f"data delay offset must be a number of seconds from 0 to "
                         f"{MAX_DELAY_MS // 1000}, got {seconds!r}")
    return round(seconds * 1000)


def asset_id_problem(asset_id: Any) -> str | None:
    """Why ``asset_id`` could never name an asset of the telemetry schema; ``None`` if it can.

    >>> asset_id_problem("pump-1") is None
    True
    >>> print(asset_id_problem(""))
    asset id '' must be 1-256 characters, with no control characters and no leading or trailing whitespace
    """
    if isinstance(asset_id, str) and _ASSET_ID["minLength"] <= len(asset_id) <= \
            _ASSET_ID["maxLength"] and _ASSET_ID_RE.search(asset_id) is not None:
        return None
    shown = asset_id if not isinstance(asset_id, str) or len(asset_id) <= 40 else asset_id[:40] + "…"
    return (f"asset id {shown!r} must be {_ASSET_ID['minLength']}-{_ASSET_ID['maxLength']} "
            "characters, with no control characters and no leading or trailing whitespace")


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
    their notifications go to. ``rescore_late``: replay the ranges late points changed,
    automatically (:mod:`streams.late_rescore`; off by default).
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
    max_fill_points: int = DEFAULT_MAX_FILL_POINTS
    model_version: int | None = None
    alerts: tuple[AlertConfig, ...] = ()
    hooks: tuple[str, ...] = ()
    rescore_late: bool = False

    def __post_init__(self) -> None:
        """Every bound at once (docs/control.md, "Bounds"); ``ValueError`` lists what is wrong."""
        problems = []
        if not isinstance(self.inference_id, str) or not _NAME.match(self.inference_id):
            problems.append(f"inference id {self.inference_id!r} must be 1-128 letters, digits, "
                            "'.', '_' or '-', starting with a letter or digit")
        if not isinstance(self.model_id, str) or not self.model_id or len(self.model_id) > 256:
            problems.append(f"model id must be 1-256 characters, got {self.model_id!r}")
        if not isinstance(self.topic, str) or not _TOPIC.match(self.topic):
            problems.append(f"topic {self.topic!r} must be a Kafka topic name: 1-249 letters, "
                            "digits, '.', '_' or '-'")
        checks: list[tuple[Any, str, int, int]] = [
            (self.sensitivity, "sensitivity", 1, 100),
            (self.start_ms, "start (epoch ms, before 2100-01-01)", 0, MAX_START_MS - 1),
            (self.delay_ms, "data delay offset (ms, at most 7 days)", 0, MAX_DELAY_MS),
            (self.idle_timeout_ms, "idle timeout (ms, at most 7 days)", 0, MAX_IDLE_TIMEOUT_MS),
            (self.max_fill_points, "max fill points", 0, MAX_FILL_POINTS),
        ]
        if self.model_version is not None:
            checks.append((self.model_version, "model version", 1, MAX_MODEL_VERSION))
        for value, what, low, high in checks:
            try:
                whole_number(value, what, low, high)
            except ValueError as exc:
                problems.append(str(exc))
        if not isinstance(self.rescore_late, bool):
            problems.append(f"rescore_late must be true or false, got {self.rescore_late!r}")
        if self.clock not in CLOCK_MODES:
            problems.append(f"clock must be one of {', '.join(CLOCK_MODES)}, got {self.clock!r}")
        if len(self.assets) > MAX_ASSETS:
            problems.append(f"an asset filter names at most {MAX_ASSETS} assets, "
                            f"got {len(self.assets)}")
        problems += sorted(p for a in self.assets if (p := asset_id_problem(a)) is not None)[:3]
        names = [a.name for a in self.alerts]
        if len(names) != len(set(names)):
            problems.append("alert configuration names must be unique within an inference")
        if problems:
            raise ValueError("; ".join(problems))

    def wants(self, asset_id: str) -> bool:
        """Whether this inference scores the asset (no filter: every asset)."""
        return not self.assets or asset_id in self.assets

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InferenceConfig:
        """Read an inference from plain data (a create command's parameters).

        ``KeyError`` names a missing field; ``ValueError`` says what else is wrong.

        >>> InferenceConfig.from_dict({"inference_id": "i", "model_id": "m", "topic": "t",
        ...                            "assets": "pump-1"})
        Traceback (most recent call last):
        ...
        ValueError: assets must be a list of asset ids, got 'pump-1'
        """
        known = {"inference_id", "model_id", "topic", "sensitivity", "start_ms", "delay_ms",
                 "assets", "clock", "idle_timeout_ms", "max_fill_points", "model_version",
                 "alerts", "hooks", "rescore_late"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown inference field(s): {', '.join(sorted(unknown))}")
        problems: list[str] = []

        def take(read: Callable[[], Any], stand_in: Any) -> Any:
            """``read()``, or, noting its problem, a valid stand-in: every problem is reported
            at once, none twice."""
            try:
                return read()
            except (TypeError, ValueError) as exc:
                problems.append(str(exc))
                return stand_in

        def number(name: str, default: int, low: int, high: int, what: str) -> int:
            return int(take(lambda: whole_number(d.get(name, default), what, low, high), default))

        def listed(name: str, of: str) -> list[Any]:
            value = d.get(name, [])
            if isinstance(value, list | tuple | frozenset | set):
                return list(value)
            problems.append(f"{name} must be a list of {of}, got {value!r}")
            return []

        hooks = listed("hooks", "hook names")
        if not all(isinstance(h, str) and h for h in hooks):
            problems.append(f"hooks must be a list of hook names, got {hooks!r}")
            hooks = []
        assets = listed("assets", "asset ids")
        if not all(isinstance(a, str) for a in assets):
            problems.append(f"assets must be a list of asset ids, got {assets!r}")
            assets = []
        version = d.get("model_version")
        fields = {
            "inference_id": take(lambda: _text(d["inference_id"], "inference id"), "x"),
            "model_id": take(lambda: _text(d["model_id"], "model id"), "x"),
            "topic": take(lambda: _text(d["topic"], "topic"), "x"),
            "sensitivity": number("sensitivity", DEFAULT_SENSITIVITY, 1, 100, "sensitivity"),
            "start_ms": number("start_ms", 0, 0, MAX_START_MS - 1,
                               "start (epoch ms, before 2100-01-01)"),
            "delay_ms": number("delay_ms", 0, 0, MAX_DELAY_MS,
                               "data delay offset (ms, at most 7 days)"),
            "assets": frozenset(assets),
            "clock": d.get("clock", "wall"),
            "idle_timeout_ms": number("idle_timeout_ms", 5_000, 0, MAX_IDLE_TIMEOUT_MS,
                                      "idle timeout (ms, at most 7 days)"),
            "max_fill_points": number("max_fill_points", 5, 0, MAX_FILL_POINTS, "max fill points"),
            "model_version": None if version is None else
            take(lambda: whole_number(version, "model version", 1, MAX_MODEL_VERSION), None),
            "alerts": tuple(take(lambda: tuple(AlertConfig.from_dict(a)
                                               for a in listed("alerts", "alert configurations")),
                                 ())),
            "hooks": tuple(hooks),
            "rescore_late": d.get("rescore_late", False),
        }
        try:
            config = cls(**fields)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return config

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
            "rescore_late": self.rescore_late,
        }


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")
    return value
