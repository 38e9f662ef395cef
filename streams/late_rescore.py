"""Automatic re-score of late data (SPEC §6, issue 14 item 6): the pure rules.

A point that arrives after its slot was finalised goes to the late topic; the live stream
never scores it again. An inference created with ``rescore_late`` asks for the range that
point would have changed to be replayed, without anyone issuing a command:

* **what a late point changes** (:func:`affected_range`): its own slot and the
  ``window_size`` slots after it, whose windows held a fill (or a gap) where it belongs;
* **on the worker** (:class:`LateRequests`): the ranges of the late points of each
  inference are collected for ``coalesce_ms`` from the first (the worker uses 0: each
  batch's are sent with its output, so a crash cannot lose them), then sent to the
  controller as few ranges as cover them (:func:`coalesce`: overlapping ranges merge,
  neighbours join while the hull stays within one replay's :data:`MAX_REPLAY_POINTS`), each
  with the assets whose points came late;
* **on the controller** (:class:`RescoreQueue`, kept in its table): the requests of every
  worker merge into one queue per inference, bounded by :data:`MAX_PENDING` ranges (the
  oldest are dropped and counted beyond it). One range at a time becomes an ordinary replay
  of those assets — once no replay of the inference runs (one at a time, manual ones
  included), the range lies within what every worker has finalised, and
  :data:`MIN_GAP_MS` has passed since the last automatic one started (rate limit).

A replay publishes no alert and no notification, so re-scoring sends none twice.

>>> r = affected_range(10_000, interval_ms=1_000, window_size=4)
>>> (r.start_ms, r.end_ms)
(10000, 15000)
>>> asked = LateRequests()
>>> asked.add("inf", "pump-1", 10_000, 1_000, 4, now_ms=0)
>>> asked.add("inf", "pump-2", 12_000, 1_000, 4, now_ms=300)
>>> asked.due(now_ms=500)
[]
>>> [(i, x.start_ms, x.end_ms, sorted(x.assets)) for i, x in asked.due(now_ms=1_000)]
[('inf', 10000, 17000, ['pump-1', 'pump-2'])]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from streams.replay import MAX_REPLAY_POINTS, ReplayState, replay_points

#: How long a worker collects an inference's late points before asking for their re-score.
COALESCE_MS: Final = 1_000
#: The least time between two automatic replays of one inference (their starts).
MIN_GAP_MS: Final = 2_000
#: The most ranges waiting per inference; beyond it the oldest are dropped (and counted).
MAX_PENDING: Final = 1_000
#: The most ranges one worker keeps per inference between two requests.
MAX_COLLECTED: Final = 10_000


@dataclass(frozen=True, slots=True)
class RescoreRange:
    """``[start, end)`` of an inference to replay for ``assets``."""

    start_ms: int
    end_ms: int
    assets: frozenset[str]

    def to_record(self) -> dict[str, Any]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "assets": sorted(self.assets)}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> RescoreRange:
        """Read a range back; ``ValueError`` says what is wrong.

        >>> RescoreRange.from_record({"start_ms": 0, "end_ms": 5, "assets": ["a"]}).assets
        frozenset({'a'})
        >>> RescoreRange.from_record({"start_ms": 5, "end_ms": 5, "assets": ["a"]})
        Traceback (most recent call last):
        ...
        ValueError: a late range needs whole start_ms < end_ms and a list of asset ids
        """
        plain = d if isinstance(d, Mapping) else {}
        start, end, assets = plain.get("start_ms"), plain.get("end_ms"), plain.get("assets")
        if (not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool)
                or isinstance(end, bool) or not 0 <= start < end or not isinstance(assets, list)
                or not assets or not all(isinstance(a, str) and a for a in assets)):
            raise ValueError("a late range needs whole start_ms < end_ms and a list of asset ids")
        return cls(start, end, frozenset(assets))


def affected_range(slot_ms: int, interval_ms: int, window_size: int) -> RescoreRange:
    """The slots a point late for ``slot_ms`` would have changed: its own and the
    ``window_size`` after it (their windows held a fill or a gap in its place).

    >>> affected_range(0, 1_000, 16).end_ms
    17000
    """
    return RescoreRange(slot_ms, slot_ms + (window_size + 1) * interval_ms, frozenset())


def coalesce(ranges: Iterable[RescoreRange], interval_ms: int,
             max_points: int = MAX_REPLAY_POINTS) -> list[RescoreRange]:
    """As few ranges as cover ``ranges``, each within ``max_points`` data points.

    Sorted by start, a range joins the one before while their hull stays within the limit
    (re-scoring the slots between them again changes nothing); a range longer than the limit
    is cut in pieces. Assets are united.

    >>> rs = [RescoreRange(0, 5_000, frozenset("a")), RescoreRange(3_000, 9_000, frozenset("b")),
    ...       RescoreRange(20_000, 21_000, frozenset("a"))]
    >>> [(r.start_ms, r.end_ms, sorted(r.assets)) for r in coalesce(rs, 1_000, max_points=10)]
    [(0, 9000, ['a', 'b']), (20000, 21000, ['a'])]
    >>> [(r.start_ms, r.end_ms) for r in coalesce([RescoreRange(0, 25_000, frozenset("a"))],
    ...                                          1_000, max_points=10)]
    [(0, 10000), (10000, 20000), (20000, 25000)]
    """
    if interval_ms <= 0:
        raise ValueError(f"the interval must be positive, got {interval_ms}")
    span = max_points * interval_ms
    pieces: list[RescoreRange] = []
    for r in sorted(ranges, key=lambda r: (r.start_ms, r.end_ms)):
        for start in range(r.start_ms, r.end_ms, span):
            pieces.append(RescoreRange(start, min(r.end_ms, start + span), r.assets))
    out: list[RescoreRange] = []
    for p in pieces:
        last = out[-1] if out else None
        if last is not None and replay_points(last.start_ms, max(last.end_ms, p.end_ms),
                                              interval_ms) <= max_points:
            out[-1] = RescoreRange(last.start_ms, max(last.end_ms, p.end_ms),
                                   last.assets | p.assets)
        else:
            out.append(p)
    return out


@dataclass
class _Collected:
    interval_ms: int
    since_ms: int
    ranges: list[RescoreRange] = field(default_factory=list)


class LateRequests:
    """A worker's late points, per inference, until it is time to ask for their re-score.

    Bounded: beyond :data:`MAX_COLLECTED` ranges an inference's collection is coalesced in
    place, which keeps it to a few ranges per 2,000 slots of history.
    """

    def __init__(self, coalesce_ms: int = COALESCE_MS) -> None:
        self.coalesce_ms = coalesce_ms
        self._by_inference: dict[str, _Collected] = {}

    def add(self, inference_id: str, asset_id: str, slot_ms: int, interval_ms: int,
            window_size: int, now_ms: int) -> None:
        """A point of ``asset_id`` late for ``slot_ms``."""
        got = self._by_inference.get(inference_id)
        if got is None or got.interval_ms != interval_ms:
            got = self._by_inference[inference_id] = _Collected(interval_ms, now_ms)
        r = affected_range(slot_ms, interval_ms, window_size)
        got.ranges.append(replace(r, assets=frozenset((asset_id,))))
        if len(got.ranges) > MAX_COLLECTED:
            got.ranges = coalesce(got.ranges, interval_ms)

    def due(self, now_ms: int) -> list[tuple[str, RescoreRange]]:
        """The coalesced ranges of every inference collected for ``coalesce_ms`` or more,
        forgotten here once returned."""
        out: list[tuple[str, RescoreRange]] = []
        for inference_id, got in list(self._by_inference.items()):
            if now_ms - got.since_ms >= self.coalesce_ms:
                del self._by_inference[inference_id]
                out += [(inference_id, r) for r in coalesce(got.ranges, got.interval_ms)]
        return out

    def forget(self, inference_id: str) -> None:
        self._by_inference.pop(inference_id, None)


@dataclass(frozen=True, slots=True)
class RescoreQueue:
    """The controller's queue of late ranges for one inference (a value of its table).

    >>> q = RescoreQueue(1_000).add([RescoreRange(5_000, 9_000, frozenset("a"))])
    >>> q.next(now_ms=10_000, finalised_ms=8_000, busy=False)[0] is None  # not finalised yet
    True
    >>> r, q = q.next(now_ms=10_000, finalised_ms=9_000, busy=False)
    >>> (r.start_ms, r.end_ms, q.pending, q.last_started_ms)
    (5000, 9000, (), 10000)
    """

    interval_ms: int
    pending: tuple[RescoreRange, ...] = ()
    last_started_ms: int | None = None
    #: ranges dropped because the queue was full
    dropped: int = 0

    def add(self, ranges: Iterable[RescoreRange]) -> RescoreQueue:
        """The queue with ``ranges`` merged in, within :data:`MAX_PENDING` (oldest dropped).

        >>> q = RescoreQueue(1_000).add([RescoreRange(0, 3_000, frozenset("a"))])
        >>> [(r.start_ms, r.end_ms, sorted(r.assets))
        ...  for r in q.add([RescoreRange(2_000, 4_000, frozenset("b"))]).pending]
        [(0, 4000, ['a', 'b'])]
        """
        merged = coalesce([*self.pending, *ranges], self.interval_ms)
        over = max(0, len(merged) - MAX_PENDING)
        return replace(self, pending=tuple(merged[over:]), dropped=self.dropped + over)

    def retry(self, replay: ReplayState) -> RescoreQueue:
        """The queue with an abandoned automatic replay's range back in it (a worker killed
        mid-replay must not lose a late re-score: nobody asked for it, so nobody asks again);
        a replay someone commanded is theirs to run again, and is left out.

        >>> from streams.replay import ReplayState
        >>> r = ReplayState.accepted("r", "i", 0, 9_000, 9, 0, assets=["a"], origin="late")
        >>> [(x.start_ms, x.end_ms) for x in RescoreQueue(1_000).retry(r.abandoned(5)).pending]
        [(0, 9000)]
        >>> RescoreQueue(1_000).retry(ReplayState.accepted("r", "i", 0, 9_000, 9, 0)).pending
        ()
        """
        if replay.origin != "late" or not replay.assets:
            return self
        return self.add([RescoreRange(replay.start_ms, replay.end_ms, frozenset(replay.assets))])

    def next(self, now_ms: int, finalised_ms: int | None,
             busy: bool) -> tuple[RescoreRange | None, RescoreQueue]:
        """The range to replay now, and the queue without it; ``None`` (queue unchanged) while
        a replay of the inference runs, within :data:`MIN_GAP_MS` of the last automatic start,
        or while no pending range lies within ``finalised_ms``."""
        if busy or not self.pending or finalised_ms is None:
            return None, self
        if self.last_started_ms is not None and now_ms - self.last_started_ms < MIN_GAP_MS:
            return None, self
        ready = next((r for r in self.pending if r.end_ms <= finalised_ms), None)
        if ready is None:
            return None, self
        rest = tuple(r for r in self.pending if r is not ready)
        return ready, replace(self, pending=rest, last_started_ms=now_ms)

    def to_record(self) -> dict[str, Any]:
        return {"kind": "late_rescore_queue", "interval_ms": self.interval_ms,
                "pending": [r.to_record() for r in self.pending],
                "last_started_ms": self.last_started_ms, "dropped": self.dropped}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> RescoreQueue:
        """Read a queue back.

        >>> q = RescoreQueue(1_000, (RescoreRange(0, 9, frozenset("a")),), 5, 1)
        >>> RescoreQueue.from_record(q.to_record()) == q
        True
        """
        last = d.get("last_started_ms")
        return cls(int(d["interval_ms"]),
                   tuple(RescoreRange.from_record(r) for r in d.get("pending", [])),
                   None if last is None else int(last), int(d.get("dropped", 0)))


__all__ = ["COALESCE_MS", "MAX_PENDING", "MIN_GAP_MS", "LateRequests", "RescoreQueue",
           "RescoreRange", "affected_range", "coalesce"]
