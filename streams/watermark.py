"""Per-asset slots, the watermark and the data delay offset (SPEC §5.2; docs/watermark.md).

Slots are epoch-aligned: the slot of a point is ``floor(ts_ms / Δ) · Δ``, the half-open
interval ``[slot_ms, slot_ms + Δ)``. A slot is **due** at ``slot_ms + Δ + D`` on the inference
clock: when its interval has ended and the data delay offset ``D`` has passed. Due slots are
**finalised** in slot order and the watermark (the last finalised slot) moves up to them; it
never goes back. A point whose slot is at or before the watermark is **late**.

SPEC §5.2's example — 5-minute data, the point stamped 01:30:

>>> MIN = 60_000
>>> t = 90 * MIN                                   # 01:30 (epoch-aligned day, for brevity)
>>> due_at_ms(t, interval_ms=5 * MIN, delay_ms=0) == 95 * MIN                   # 01:35
True
>>> due_at_ms(t, interval_ms=5 * MIN, delay_ms=600_000) == 105 * MIN            # 01:45
True

One asset, ``previous`` fill, points arriving out of order, one slot missing:

>>> from streams.records import Reading
>>> wm = WatermarkConfig(interval_ms=5 * MIN, delay_ms=0, fill="previous",
...                      max_fill_points=3).build(None)
>>> [type(wm.add(Reading("pump", m * MIN, {"v": float(m)}))).__name__ for m in (100, 90)]
['Accepted', 'Accepted']
>>> [(o.reading.ts_ms // MIN, o.filled) for o in wm.advance(110 * MIN)]  # 01:50
[(90, False), (95, True), (100, False)]
>>> late = wm.add(Reading("pump", 95 * MIN, {"v": 9.5}))
>>> type(late).__name__, late.late_by_ms // MIN  # due at 01:40, finalised as of 01:50
('Late', 10)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from streams.fill import FILL_METHODS, FillMethod, fill
from streams.records import Reading

# --------------------------------------------------------------------------- the arithmetic


def slot_of(ts_ms: int, interval_ms: int) -> int:
    """The epoch-aligned slot a timestamp falls in: ``floor(ts_ms / interval_ms) · interval_ms``.

    >>> slot_of(299_999, 300_000), slot_of(300_000, 300_000), slot_of(-1, 300_000)
    (0, 300000, -300000)
    """
    return (ts_ms // interval_ms) * interval_ms


def due_at_ms(slot_ms: int, interval_ms: int, delay_ms: int) -> int:
    """When a slot is due on the inference clock: its end plus the data delay offset.

    >>> due_at_ms(5_400_000, interval_ms=300_000, delay_ms=600_000)  # 01:30 → 01:45
    6300000
    """
    return slot_ms + interval_ms + delay_ms


def last_due_slot_ms(now_ms: int, interval_ms: int, delay_ms: int) -> int:
    """The latest slot due at ``now_ms``: every slot at or before it is due, none after it.

    >>> last_due_slot_ms(5_700_000, 300_000, 0)  # at 01:35 the 01:30 slot is due
    5400000
    >>> last_due_slot_ms(5_699_999, 300_000, 0)  # a millisecond before, only 01:25
    5100000
    """
    return slot_of(now_ms - interval_ms - delay_ms, interval_ms)


def late_by_ms(slot_ms: int, now_ms: int, interval_ms: int, delay_ms: int) -> int:
    """How long before ``now_ms`` the slot was due (≤ 0: not due yet, so not late).

    >>> late_by_ms(5_400_000, now_ms=6_000_000, interval_ms=300_000, delay_ms=0)
    300000
    """
    return now_ms - due_at_ms(slot_ms, interval_ms, delay_ms)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Accepted:
    """The point is pending in its slot, to be finalised at ``due_at_ms``."""

    slot_ms: int
    due_at_ms: int


@dataclass(frozen=True, slots=True)
class Late:
    """The point's slot was already finalised: publish it to the late topic, do not score it.

    ``late_by_ms`` is measured on the inference clock as of the last :meth:`AssetWatermark.advance`
    (≥ 0): how long before that the slot had been due.
    """

    reading: Reading
    slot_ms: int
    late_by_ms: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A slot got a second point; ``dropped`` is the one that will not be scored.

    Rule: per slot the earliest timestamp is kept; among equal timestamps the first received.
    ``dropped`` is usually the point just added, but it is the one held before when the new
    point is earlier in the same slot. A re-delivery of the last finalised point is a
    duplicate too (not late).
    """

    dropped: Reading
    kept_ts_ms: int
    slot_ms: int


AddOutcome = Accepted | Late | Duplicate


class Slot(NamedTuple):
    """A finalised slot with a point to score: the real one, or one made by the fill method.

    A named tuple (immutable, and built per point about twice as fast as a frozen dataclass).
    """

    slot_ms: int
    reading: Reading
    filled: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing slots ``[from_ms, to_ms)`` (``points`` of them) reported instead of being filled.

    ``open_ended``: no point has ended the gap yet (it was reported when it outgrew the fill
    limit); the rest of it, if any, is reported as another ``Gap`` starting at ``to_ms`` when
    the next point is finalised. Every missing slot is in at most one ``Gap``.
    """

    from_ms: int
    to_ms: int
    points: int
    open_ended: bool = False


SlotOutput = Slot | Gap


# --------------------------------------------------------------------------- config → logic


@dataclass(frozen=True, slots=True)
class WatermarkConfig:
    """How one inference's slots work: data interval Δ, delay offset D, fill method and limit.

    No defaults: an inference states its delay, fill and gap limit (no hidden grace period).

    >>> WatermarkConfig(300_000, 600_000, "linear", 3).due_at_ms(5_400_000)
    6300000
    """

    interval_ms: int
    delay_ms: int
    fill: FillMethod
    max_fill_points: int

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise ValueError(f"data interval must be > 0 ms, got {self.interval_ms}")
        if self.delay_ms < 0:
            raise ValueError(f"data delay offset must be ≥ 0 ms, got {self.delay_ms}")
        if self.fill not in FILL_METHODS:
            raise ValueError(f"unknown fill method {self.fill!r}; choose one of {FILL_METHODS}")
        if self.max_fill_points < 0:
            raise ValueError(f"max fill points must be ≥ 0, got {self.max_fill_points}")

    def slot_of(self, ts_ms: int) -> int:
        return slot_of(ts_ms, self.interval_ms)

    def due_at_ms(self, slot_ms: int) -> int:
        return due_at_ms(slot_ms, self.interval_ms, self.delay_ms)

    def build(self, resume_state: dict[str, Any] | None) -> AssetWatermark:
        """The per-asset logic, fresh (``None``) or from an :meth:`AssetWatermark.snapshot`."""
        return AssetWatermark(self, resume_state)


def _reading_to_plain(r: Reading) -> dict[str, Any]:
    return {"asset_id": r.asset_id, "ts_ms": r.ts_ms, "signals": dict(r.signals)}


def _reading_from_plain(d: dict[str, Any]) -> Reading:
    signals = {str(k): float(v) for k, v in d["signals"].items()}
    return Reading(asset_id=str(d["asset_id"]), ts_ms=int(d["ts_ms"]), signals=signals)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


class AssetWatermark:
    """One asset's pending points and watermark; :meth:`snapshot` is plain JSON-able data.

    * :meth:`add` puts a point in its slot (or says why not: late, duplicate);
    * :meth:`advance` finalises every slot due at the given clock time, in slot order:
      real points, filled points for short runs of missing slots, gaps for long ones.

    Missing slots are resolved when the next real point is finalised — never past the last
    real point, so nothing is invented for an asset that has stopped — except that a run that
    outgrows ``max_fill_points`` while the asset is silent is reported at once as an
    open-ended :class:`Gap` (it can no longer be filled, whatever comes next).
    The watermark starts when the asset's first point arrives: until then :meth:`advance`
    does nothing, and a first point is never late.
    """

    __slots__ = ("_clock_ms", "_gap_to_ms", "_last", "_pending", "_watermark_ms", "config")

    def __init__(self, config: WatermarkConfig, resume_state: dict[str, Any] | None = None) -> None:
        self.config = config
        self._pending: dict[int, Reading] = {}
        self._watermark_ms: int | None = None
        self._clock_ms: int | None = None
        self._last: Reading | None = None
        self._gap_to_ms: int | None = None
        if resume_state is not None:
            self._watermark_ms = _opt_int(resume_state["watermark_ms"])
            self._clock_ms = _opt_int(resume_state["clock_ms"])
            last = resume_state["last"]
            self._last = None if last is None else _reading_from_plain(last)
            self._gap_to_ms = _opt_int(resume_state["gap_reported_to_ms"])
            for plain in resume_state["pending"]:
                reading = _reading_from_plain(plain)
                self._pending[config.slot_of(reading.ts_ms)] = reading

    # ------------------------------------------------------------------ reading the state

    @property
    def watermark_ms(self) -> int | None:
        """The last finalised slot, ``None`` before the first :meth:`advance` with a point."""
        return self._watermark_ms

    @property
    def clock_ms(self) -> int | None:
        """The latest clock time :meth:`advance` was given (``late_by_ms`` is measured on it)."""
        return self._clock_ms

    @property
    def last_point(self) -> Reading | None:
        """The last real point finalised."""
        return self._last

    def pending(self) -> list[Reading]:
        """Points waiting for their slot to be due, in slot order."""
        return [self._pending[s] for s in sorted(self._pending)]

    def next_due_at_ms(self) -> int | None:
        """The earliest clock time at which :meth:`advance` can output something, if any.

        The due time of the first pending slot, or of the slot at which the current run of
        missing slots outgrows the fill limit; the glue can set its timer to it.
        """
        cfg = self.config
        candidates: list[int] = []
        if self._pending:
            candidates.append(cfg.due_at_ms(min(self._pending)))
        if self._last is not None and self._gap_to_ms is None:
            limit_slot = cfg.slot_of(self._last.ts_ms) + (cfg.max_fill_points + 1) * cfg.interval_ms
            candidates.append(cfg.due_at_ms(limit_slot))
        return min(candidates, default=None)

    # ------------------------------------------------------------------ the logic

    def add(self, reading: Reading) -> AddOutcome:
        """Put a point in its slot, whatever order points arrive in.

        >>> wm = WatermarkConfig(1_000, 0, "none", 0).build(None)
        >>> wm.add(Reading("a", 1_500, {"v": 1.0}))
        Accepted(slot_ms=1000, due_at_ms=2000)
        >>> wm.add(Reading("a", 1_200, {"v": 2.0})).dropped.ts_ms  # earlier in the slot: kept
        1500
        """
        cfg = self.config
        slot = cfg.slot_of(reading.ts_ms)
        last = self._last
        if last is not None and reading.ts_ms == last.ts_ms:
            return Duplicate(dropped=reading, kept_ts_ms=last.ts_ms, slot_ms=slot)
        if self._watermark_ms is not None and slot <= self._watermark_ms:
            assert self._clock_ms is not None  # a watermark is only set by advance
            return Late(reading, slot, late_by_ms(slot, self._clock_ms, cfg.interval_ms, cfg.delay_ms))
        held = self._pending.get(slot)
        if held is None:
            self._pending[slot] = reading
            return Accepted(slot, cfg.due_at_ms(slot))
        if reading.ts_ms < held.ts_ms:
            self._pending[slot] = reading
            return Duplicate(dropped=held, kept_ts_ms=reading.ts_ms, slot_ms=slot)
        return Duplicate(dropped=reading, kept_ts_ms=held.ts_ms, slot_ms=slot)

    def advance(self, now_ms: int) -> list[SlotOutput]:
        """Finalise, in slot order, every slot due at ``now_ms``; return what they produced.

        A clock time earlier than one already given changes nothing (the watermark never goes
        back). Each point is output at most once.

        >>> wm = WatermarkConfig(1_000, 500, "zero", 1).build(None)
        >>> _ = wm.add(Reading("a", 0, {"v": 1.0})), wm.add(Reading("a", 2_000, {"v": 3.0}))
        >>> wm.advance(1_499)
        []
        >>> [(o.slot_ms, o.reading.signals["v"], o.filled) for o in wm.advance(3_500)]
        [(0, 1.0, False), (1000, 0.0, True), (2000, 3.0, False)]
        """
        cfg = self.config
        if self._clock_ms is not None:
            now_ms = max(now_ms, self._clock_ms)
        self._clock_ms = now_ms
        if self._last is None and not self._pending:
            return []
        upto_ms = last_due_slot_ms(now_ms, cfg.interval_ms, cfg.delay_ms)
        out: list[SlotOutput] = []
        step = cfg.interval_ms
        pending = self._pending
        # the slot right after the last real point's: nothing missing between (no run to close)
        follows = None if self._last is None else cfg.slot_of(self._last.ts_ms) + step
        for slot in sorted(s for s in pending if s <= upto_ms):
            reading = pending.pop(slot)
            if self._last is not None and (slot != follows or self._gap_to_ms is not None):
                out.extend(self._close_run(slot, reading))
            out.append(Slot(slot, reading))
            self._last = reading
            self._gap_to_ms = None
            follows = slot + step
        if self._watermark_ms is None or upto_ms > self._watermark_ms:
            self._watermark_ms = upto_ms
        if self._last is not None and self._gap_to_ms is None:
            first_missing_ms = cfg.slot_of(self._last.ts_ms) + cfg.interval_ms
            missing = (self._watermark_ms - first_missing_ms) // cfg.interval_ms + 1
            if missing > cfg.max_fill_points:
                self._gap_to_ms = self._watermark_ms + cfg.interval_ms
                out.append(Gap(first_missing_ms, self._gap_to_ms, missing, open_ended=True))
        return out

    def _close_run(self, slot_ms: int, reading: Reading) -> list[SlotOutput]:
        """Resolve the missing slots between the last real point and ``reading`` (in ``slot_ms``)."""
        cfg = self.config
        last = self._last
        assert last is not None
        step = cfg.interval_ms
        if self._gap_to_ms is not None:  # already outgrew the limit: report the rest
            rest = (slot_ms - self._gap_to_ms) // step
            return [Gap(self._gap_to_ms, slot_ms, rest)] if rest > 0 else []
        first_missing_ms = cfg.slot_of(last.ts_ms) + step
        missing = (slot_ms - first_missing_ms) // step
        if missing == 0:
            return []
        if missing > cfg.max_fill_points:
            return [Gap(first_missing_ms, slot_ms, missing)]
        out: list[SlotOutput] = []
        for at_ms in range(first_missing_ms, slot_ms, step):
            signals = fill(cfg.fill, last.ts_ms, last.signals, reading.ts_ms, reading.signals, at_ms)
            if signals is not None:
                out.append(Slot(at_ms, Reading(last.asset_id, at_ms, signals), filled=True))
        return out

    def snapshot(self) -> dict[str, Any]:
        """Everything the future outputs depend on, as plain JSON-able data.

        >>> cfg = WatermarkConfig(1_000, 0, "previous", 2)
        >>> wm = cfg.build(None)
        >>> _ = wm.add(Reading("a", 3_000, {"v": 1.0}))
        >>> cfg.build(wm.snapshot()).snapshot() == wm.snapshot()
        True
        """
        return {
            "watermark_ms": self._watermark_ms,
            "clock_ms": self._clock_ms,
            "last": None if self._last is None else _reading_to_plain(self._last),
            "gap_reported_to_ms": self._gap_to_ms,
            "pending": [_reading_to_plain(r) for r in self.pending()],
        }
