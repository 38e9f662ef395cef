"""Inference-scope alerts: correlating the anomalies of all an inference's assets (SPEC §7).

An inference's assets live on every partition of its topic, scored by whichever worker holds
each one. To group them in one place, each worker sends a **feed** keyed by inference id (so
all of one inference's feed is on one partition, in one order per sender):

* every anomaly its inference-scope alert configs care about, as it is scored;
* for every source partition it owns, the **progress** of that partition: the slot up to which
  every active asset of the inference there has been scored (:func:`partition_progress`), or
  ``None`` when it has no such asset.

:class:`InferenceCorrelation` (one per inference) takes that feed. Once every partition has
reported, it holds anomalies back until every partition with assets has passed them, then
gives them to the inference-scope groupers in timestamp order and advances them to that
inference-wide watermark. So the groups
are the same whatever order the partitions' feeds interleave in, and a group is not resolved
while a slower partition may still add to it. Re-delivered feed records change nothing
(progress only goes forward, anomalies are taken once per asset and timestamp).

>>> from streams.alerts import AlertConfig
>>> from streams.records import Anomaly
>>> c = InferenceCorrelation("line-3", 1_000, [AlertConfig("plant", 2, scope="inference")],
...                          partitions=3)
>>> def anomaly(asset: str, point: int) -> Anomaly:
...     return Anomaly("line-3", asset, point * 1_000, "m", 1, 9.0, 0.9, 70, 0.3, {"vib": 1.0})
>>> c.add(anomaly("pump-2", 5)), c.progress(1, 5_000), c.progress(2, None)  # 2 has no assets
([], [], [])
>>> c.add(anomaly("pump-1", 4))                     # an earlier one, from partition 0
[]
>>> [(a.state, a.assets, a.anomaly_count) for a in c.progress(0, 6_000)]
[('open', ('pump-1',), 1), ('updated', ('pump-1', 'pump-2'), 2)]
>>> c.progress(1, 9_000)                             # partition 0 is still at point 6
[]
>>> [(a.state, a.last_ts_ms) for a in c.progress(0, 8_000)]   # x + 1 = 3 points after 5
[('resolved', 5000)]
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streams.alerts import Alert, AlertConfig, AlertGrouper, AlertGrouperConfig
from streams.codec import dumps, loads
from streams.records import Anomaly, anomaly_from_plain, anomaly_to_plain
from streams.state_format import CORRELATION_STATE

#: Anomalies held back at most; beyond it the oldest are released without waiting (a partition
#: that stopped reporting must not hold an inference's alerts, or its memory, forever).
MAX_PENDING: Final = 10_000


@dataclass(frozen=True, slots=True)
class Progress:
    """Every active asset of the inference on ``partition`` has been scored up to
    ``watermark_ms``; ``None``: the partition has no asset of the inference that has."""

    partition: int
    watermark_ms: int | None


FeedItem = Anomaly | Progress


def encode_feed(item: FeedItem) -> bytes:
    """One feed record's value (the key is the inference id).

    >>> decode_feed(encode_feed(Progress(3, 60_000)))
    Progress(partition=3, watermark_ms=60000)
    """
    if isinstance(item, Progress):
        return dumps({"type": "progress", "partition": item.partition,
                      "watermark_ms": item.watermark_ms})
    return dumps({"type": "anomaly", "anomaly": anomaly_to_plain(item)})


def decode_feed(raw: bytes) -> FeedItem:
    """The item :func:`encode_feed` wrote; ``ValueError`` for anything else."""
    try:
        d = loads(raw)
        if d["type"] == "progress":
            w = d["watermark_ms"]
            return Progress(int(d["partition"]), None if w is None else int(w))
        if d["type"] == "anomaly":
            return anomaly_from_plain(d["anomaly"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable correlation feed record: {exc}") from exc
    raise ValueError(f"unknown correlation feed record type {d.get('type')!r}")


def partition_progress(assets: Iterable[tuple[int | None, bool]]) -> int | None:
    """A partition's progress from its assets' ``(watermark, idle)``: the slowest active asset's
    watermark; when every asset is idle (its pending points finalised), the newest one's.

    Assets that have finalised nothing yet do not count (``None`` when no asset does).

    >>> partition_progress([(5_000, False), (9_000, False), (2_000, True)])
    5000
    >>> partition_progress([(5_000, True), (9_000, True)]), partition_progress([(None, False)])
    (9000, None)
    """
    active: list[int] = []
    idle: list[int] = []
    for watermark, is_idle in assets:
        if watermark is not None:
            (idle if is_idle else active).append(watermark)
    if active:
        return min(active)
    return max(idle) if idle else None


class InferenceCorrelation:
    """The inference-scope alert groups of one inference; :meth:`snapshot` is plain data."""

    __slots__ = ("_groupers", "_pending", "_progress", "_released_ms", "inference_id", "partitions")

    def __init__(self, inference_id: str, interval_ms: int, alerts: Sequence[AlertConfig],
                 state: Mapping[str, Any] | None = None, partitions: int = 1) -> None:
        self.inference_id = inference_id
        #: how many partitions the inference's topic has: all must report before any release
        self.partitions = partitions
        if state is not None:
            state = CORRELATION_STATE.migrated(state)  # a newer format: StateFormatError
        groupers = state.get("groupers", {}) if state is not None else {}
        self._groupers: list[AlertGrouper] = [
            AlertGrouperConfig(inference_id, interval_ms, cfg).build(groupers.get(cfg.name))
            for cfg in alerts if cfg.scope == "inference"]
        #: anomalies held back, ordered by (timestamp, asset)
        self._pending: list[tuple[int, str, Anomaly]] = []
        self._progress: dict[int, int | None] = {}
        self._released_ms: int | None = None
        if state is not None:
            self._pending = sorted((a.ts_ms, a.asset_id, a) for a in
                                   (anomaly_from_plain(p) for p in state["pending"]))
            self._progress = {int(k): v for k, v in state["progress"].items()}
            self._released_ms = state["released_ms"]

    @property
    def watermark_ms(self) -> int | None:
        """The inference-wide watermark, once every partition has reported: the slowest
        progress of the partitions with assets."""
        if len(self._progress) < self.partitions:
            return None
        return min((w for w in self._progress.values() if w is not None), default=None)

    def add(self, anomaly: Anomaly) -> list[Alert]:
        """Take an anomaly from the feed: held until every partition has passed it (``[]``), or
        grouped at once if the inference-wide watermark already has (a partition reporting
        late)."""
        if anomaly.inference_id != self.inference_id:
            raise ValueError(f"anomaly of inference {anomaly.inference_id!r} fed to the "
                             f"correlation of {self.inference_id!r}")
        if self._released_ms is not None and anomaly.ts_ms <= self._released_ms:
            return self._group([anomaly])
        item = (anomaly.ts_ms, anomaly.asset_id, anomaly)
        at = bisect.bisect_left(self._pending, item[:2], key=lambda p: p[:2])
        if at < len(self._pending) and self._pending[at][:2] == item[:2]:
            return []  # re-delivered
        self._pending.insert(at, item)
        if len(self._pending) > MAX_PENDING:
            return self._release(self._pending[len(self._pending) - MAX_PENDING - 1][0])
        return []

    def progress(self, partition: int, watermark_ms: int | None) -> list[Alert]:
        """Take a partition's progress (it only goes forward: ``None`` after a watermark, as from
        a restarted worker that has not loaded its assets yet, changes nothing); release what
        every partition has passed, and resolve the groups nothing can join any more."""
        before = self._progress.get(partition)
        if partition in self._progress and (
                watermark_ms is None or (before is not None and watermark_ms <= before)):
            return []
        self._progress[partition] = watermark_ms
        low = self.watermark_ms
        return self._release(low) if low is not None else []

    def _release(self, upto_ms: int) -> list[Alert]:
        cut = bisect.bisect_right(self._pending, upto_ms, key=lambda p: p[0])
        ready = [a for _, _, a in self._pending[:cut]]
        del self._pending[:cut]
        if self._released_ms is None or upto_ms > self._released_ms:
            self._released_ms = upto_ms
        out = self._group(ready)
        for grouper in self._groupers:
            out += grouper.advance(self._released_ms)
        return out

    def _group(self, anomalies: Sequence[Anomaly]) -> list[Alert]:
        out: list[Alert] = []
        for grouper in self._groupers:
            out += grouper.add_all(anomalies)
        return out

    def snapshot(self) -> dict[str, Any]:
        """Everything the future outputs depend on, as plain JSON-able data.

        >>> from streams.alerts import AlertConfig
        >>> c = InferenceCorrelation("i", 1_000, [AlertConfig("a", 2, scope="inference")])
        >>> _ = c.progress(0, 3_000)
        >>> InferenceCorrelation("i", 1_000, [AlertConfig("a", 2, scope="inference")],
        ...                      c.snapshot()).snapshot() == c.snapshot()
        True
        """
        return CORRELATION_STATE.stamped({
            "groupers": {g.config.alert.name: g.snapshot() for g in self._groupers},
            "pending": [anomaly_to_plain(a) for _, _, a in self._pending],
            "progress": {str(p): w for p, w in self._progress.items()},
            "released_ms": self._released_ms,
        })
