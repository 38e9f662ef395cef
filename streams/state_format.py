"""The formats of stored state, and the migrations that read older ones (issue 16).

Every snapshot of state a worker keeps on a changelog-backed table carries its format,
``"format": N``: an asset's scoring state (:data:`ASSET_STATE`, the ``asset-state`` table),
an inference's correlation state (:data:`CORRELATION_STATE`) and a hook delivery
(:data:`DELIVERY_STATE`, the hook outbox). A worker reading a stored snapshot passes it
through :meth:`StateFormat.migrated` first:

* **no ``format``**: format 1, written before formats were named (assetwatch up to
  2026-12-03). For asset state, its oldest snapshots lack the flag run, the adoption watch
  and the asset's start, and their recent anomalies have no proof of durability; the
  migration to format 2 writes those as "none" explicitly, so the reader need not guess field
  by field;
* **an older format**: each migration step in turn, up to the current one;
* **a newer format** (a worker rolled back after a newer one wrote state):
  :class:`StateFormatError` naming both formats. For asset state the engine counts it as the
  inference's failure, so the inference ends SystemPaused with that reason rather than the
  worker guessing at fields it does not know; restarting the inference starts a new epoch,
  whose states begin afresh.

The policy for changing a format is in docs/schemas.md ("Evolution").

>>> old = {"epoch": 1, "window": {}, "detector": {}, "watermark": None, "last_ts_ms": 5,
...        "scored": 3, "recent_anomalies": [[10, {"k": 1}]]}
>>> new = ASSET_STATE.migrated(old)
>>> new["format"], new["run"], new["adoption"], new["start_ms"], new["recent_anomalies"]
(2, None, None, None, [[10, {'k': 1}, None]])
>>> try:
...     ASSET_STATE.migrated({**new, "format": 3})
... except StateFormatError as exc:
...     print(str(exc).split(":")[0])
asset state format 3 is newer than this worker reads (2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class StateFormatError(ValueError):
    """A stored state this code cannot read, with why."""


@dataclass(frozen=True)
class StateFormat:
    """One kind of stored state: the format this code writes, and how to read older ones."""

    #: what the state is, as errors name it
    what: str
    #: the format this code writes
    current: int
    #: ``format → the step to format + 1``, for every format before :attr:`current`
    migrations: Mapping[int, Migration] = field(default_factory=dict)
    #: what to do about a newer format, as the error says
    remedy: str = "run the newer version"

    def __post_init__(self) -> None:
        missing = [f for f in range(1, self.current) if f not in self.migrations]
        if missing:
            raise ValueError(f"{self.what}: no migration from format(s) {missing}")

    def format_of(self, snapshot: Mapping[str, Any]) -> int:
        """The format a stored snapshot was written in (none named: 1).

        >>> DELIVERY_STATE.format_of({}), DELIVERY_STATE.format_of({"format": 1})
        (1, 1)
        """
        if not isinstance(snapshot, Mapping):
            raise StateFormatError(f"{self.what} must be an object, got {type(snapshot).__name__}")
        fmt = snapshot.get("format", 1)
        if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
            raise StateFormatError(f"{self.what} format must be a positive integer, got {fmt!r}")
        return fmt

    def migrated(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """``snapshot`` in the current format: migrated step by step from an older one (a copy;
        the stored one is not changed), or :class:`StateFormatError` for a newer one."""
        fmt = self.format_of(snapshot)
        if fmt > self.current:
            raise StateFormatError(f"{self.what} format {fmt} is newer than this worker reads "
                                   f"({self.current}): {self.remedy}")
        snap = dict(snapshot)
        while fmt < self.current:
            snap = self.migrations[fmt](snap)
            fmt += 1
        snap["format"] = self.current
        return snap

    def stamped(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """``snapshot`` marked as written in the current format (in place, returned).

        >>> ASSET_STATE.stamped({"epoch": 1})
        {'epoch': 1, 'format': 2}
        """
        snapshot["format"] = self.current
        return snapshot


def _asset_state_1_to_2(snap: dict[str, Any]) -> dict[str, Any]:
    """Format 1 → 2: absent parts of the oldest snapshots written as "none" explicitly."""
    snap.setdefault("run", None)
    snap.setdefault("adoption", None)
    snap.setdefault("start_ms", None)
    if snap.get("recent_anomalies"):
        snap["recent_anomalies"] = [[*r, None][:3] for r in snap["recent_anomalies"]]
    return snap


#: An asset's scoring state (:meth:`streams.state_store.StateStore.snapshot`).
ASSET_STATE: Final = StateFormat(
    "asset state", 2, {1: _asset_state_1_to_2},
    remedy="run the newer version, or restart the inference to begin its states afresh")
#: An inference's correlation state (:meth:`streams.correlation.InferenceCorrelation.snapshot`).
CORRELATION_STATE: Final = StateFormat("correlation state", 1)
#: A hook delivery in the outbox (:meth:`streams.delivery.Delivery.snapshot`).
DELIVERY_STATE: Final = StateFormat("hook delivery", 1)


__all__ = ["ASSET_STATE", "CORRELATION_STATE", "DELIVERY_STATE", "StateFormat",
           "StateFormatError"]
