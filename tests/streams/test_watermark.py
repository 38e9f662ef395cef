"""Slots, due times, late points, duplicates, fill and gaps (SPEC §5.2; docs/watermark.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.clock import EventTimeClock, FakeClock
from streams.fill import FILL_METHODS, FillMethod
from streams.records import Reading
from streams.watermark import (
    Accepted,
    AssetWatermark,
    Duplicate,
    Gap,
    Late,
    Slot,
    SlotOutput,
    WatermarkConfig,
    due_at_ms,
    last_due_slot_ms,
    slot_of,
)

SEC = 1_000
MIN = 60 * SEC
FIVE_MIN = 5 * MIN
DAY_MS = 1_767_225_600_000  # 2026-01-01T00:00Z, a multiple of every interval used here


def at(h: int, m: int, s: int = 0, ms: int = 0) -> int:
    """Epoch ms of hh:mm:ss.ms on the test day."""
    return DAY_MS + ((h * 60 + m) * 60 + s) * SEC + ms


def point(ts_ms: int, v: float = 0.0, asset: str = "pump-1") -> Reading:
    return Reading(asset, ts_ms, {"v": v})


def config(
    delay_ms: int = 0, fill: FillMethod = "previous", max_fill_points: int = 3,
    interval_ms: int = FIVE_MIN,
) -> WatermarkConfig:
    return WatermarkConfig(interval_ms, delay_ms, fill, max_fill_points)


def summary(outputs: list[SlotOutput]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for o in outputs:
        if isinstance(o, Slot):
            out.append(("filled" if o.filled else "point", o.slot_ms, o.reading.ts_ms,
                        o.reading.signals["v"]))
        else:
            out.append(("gap", o.from_ms, o.to_ms, o.points, o.open_ended))
    return out


# ------------------------------------------------------------------ the arithmetic, SPEC §5.2


@pytest.mark.parametrize(
    ("ts_ms", "delay_ms", "due"),
    [
        (at(1, 30), 0, at(1, 35)),              # SPEC: 5-minute data, D = 0 → 01:35
        (at(1, 30), 600 * SEC, at(1, 45)),      # SPEC: D = 600 s → 01:45
        (at(1, 30, 42), 0, at(1, 35)),          # a point inside the slot is due with its slot
        (at(1, 34, 59, 999), 600 * SEC, at(1, 45)),
        (at(1, 35), 0, at(1, 40)),              # half-open: 01:35 starts the next slot
    ],
)
def test_point_is_due_at_its_slot_plus_interval_plus_delay(ts_ms: int, delay_ms: int, due: int) -> None:
    cfg = config(delay_ms=delay_ms)
    assert cfg.due_at_ms(cfg.slot_of(ts_ms)) == due
    assert due_at_ms(slot_of(ts_ms, FIVE_MIN), FIVE_MIN, delay_ms) == due


@pytest.mark.parametrize(
    ("ts_ms", "interval_ms", "slot"),
    [(0, 1_000, 0), (999, 1_000, 0), (1_000, 1_000, 1_000), (-1, 1_000, -1_000),
     (at(1, 32, 30), FIVE_MIN, at(1, 30))],
)
def test_slots_are_epoch_aligned_and_half_open(ts_ms: int, interval_ms: int, slot: int) -> None:
    assert slot_of(ts_ms, interval_ms) == slot


@given(now_ms=st.integers(-10**13, 10**13), interval_ms=st.integers(1, 10**7),
       delay_ms=st.integers(0, 10**7))
def test_last_due_slot_is_due_and_the_next_is_not(now_ms: int, interval_ms: int, delay_ms: int) -> None:
    s = last_due_slot_ms(now_ms, interval_ms, delay_ms)
    assert s % interval_ms == 0
    assert due_at_ms(s, interval_ms, delay_ms) <= now_ms < due_at_ms(s + interval_ms, interval_ms, delay_ms)


@pytest.mark.parametrize(
    ("delay_ms", "now_ms", "finalised"),
    [
        (0, at(1, 34, 59, 999), False),
        (0, at(1, 35), True),                   # SPEC: the 01:30 point is inferred at 01:35
        (600 * SEC, at(1, 35), False),
        (600 * SEC, at(1, 44, 59, 999), False),
        (600 * SEC, at(1, 45), True),           # SPEC: with D = 600 s, at 01:45
    ],
)
def test_spec_example_point_is_finalised_when_due_on_the_wall_clock(
    delay_ms: int, now_ms: int, finalised: bool
) -> None:
    wall = FakeClock(at(1, 30, 5))
    wm = config(delay_ms=delay_ms).build(None)
    assert wm.add(point(at(1, 30))) == Accepted(at(1, 30), wm.config.due_at_ms(at(1, 30)))
    assert wm.advance(wall.now_ms()) == []
    wall.set(now_ms)
    got = wm.advance(wall.now_ms())
    assert summary(got) == ([("point", at(1, 30), at(1, 30), 0.0)] if finalised else [])


@pytest.mark.parametrize(
    ("delay_ms", "next_stamp_ms", "finalised"),
    [
        (0, at(1, 34, 59, 999), False),
        (0, at(1, 35), True),
        (600 * SEC, at(1, 40), False),
        (600 * SEC, at(1, 45), True),
        (600 * SEC, at(2, 0), True),            # "or later"
    ],
)
def test_event_time_slot_is_due_once_a_point_stamped_t_plus_interval_plus_delay_arrives(
    delay_ms: int, next_stamp_ms: int, finalised: bool
) -> None:
    clock = EventTimeClock(FakeClock(0), idle_timeout_ms=None)
    wm = config(delay_ms=delay_ms, max_fill_points=100).build(None)
    outputs: list[SlotOutput] = []
    for r in (point(at(1, 30)), point(next_stamp_ms, 1.0)):
        clock.observe(r.ts_ms)
        wm.add(r)
        outputs += wm.advance(clock.now_ms())
    assert (("point", at(1, 30), at(1, 30), 0.0) in summary(outputs)) is finalised


# ------------------------------------------------------------------ order, duplicates, late


def test_points_arriving_out_of_order_before_they_are_due_come_out_in_timestamp_order() -> None:
    wm = config().build(None)
    for ts in (at(1, 40), at(1, 30), at(1, 35, 10), at(1, 25)):
        assert isinstance(wm.add(point(ts, ts / MIN)), Accepted)
    got = wm.advance(at(1, 45))
    assert [o.reading.ts_ms for o in got if isinstance(o, Slot)] == [
        at(1, 25), at(1, 30), at(1, 35, 10), at(1, 40)]


@pytest.mark.parametrize(
    ("first_ms", "second_ms", "kept_ms", "dropped_ms"),
    [
        (at(1, 30), at(1, 30), at(1, 30), at(1, 30)),        # same timestamp: first received
        (at(1, 31), at(1, 30, 30), at(1, 30, 30), at(1, 31)),  # earlier in the slot displaces
        (at(1, 30, 30), at(1, 31), at(1, 30, 30), at(1, 31)),  # later in the slot is dropped
    ],
)
def test_duplicate_rule_keeps_the_earliest_timestamp_of_a_slot_first_received_on_ties(
    first_ms: int, second_ms: int, kept_ms: int, dropped_ms: int
) -> None:
    wm = config().build(None)
    first, second = point(first_ms, 1.0), point(second_ms, 2.0)
    assert isinstance(wm.add(first), Accepted)
    dup = wm.add(second)
    assert isinstance(dup, Duplicate)
    assert (dup.kept_ts_ms, dup.dropped.ts_ms, dup.slot_ms) == (kept_ms, dropped_ms, at(1, 30))
    kept_v = 1.0 if kept_ms == first_ms else 2.0
    assert summary(wm.advance(at(1, 35))) == [("point", at(1, 30), kept_ms, kept_v)]


def test_redelivered_last_point_is_a_duplicate_not_late() -> None:
    wm = config().build(None)
    wm.add(point(at(1, 30)))
    wm.advance(at(1, 36))
    assert wm.add(point(at(1, 30))) == Duplicate(point(at(1, 30)), at(1, 30), at(1, 30))
    assert wm.advance(at(1, 50)) == []


@pytest.mark.parametrize(
    ("late_ts_ms", "now_ms", "late_by_ms"),
    [
        (at(1, 30, 30), at(1, 35), 0),            # same slot as a finalised point, right at due
        (at(1, 30, 30), at(1, 52), 17 * MIN),     # slot due 01:35, clock at 01:52
        (at(1, 40), at(1, 52), 7 * MIN),          # an empty slot is finalised too (due 01:45)
        (at(1, 25), at(1, 52), 22 * MIN),         # before the first point, after the watermark began
    ],
)
def test_point_for_a_finalised_slot_is_late_by_the_clock_minus_its_due_time(
    late_ts_ms: int, now_ms: int, late_by_ms: int
) -> None:
    wm = config().build(None)
    wm.add(point(at(1, 30)))
    wm.advance(at(1, 29))           # not due yet, but the watermark has begun (slot 01:20)
    wm.advance(now_ms)
    late = point(late_ts_ms, 9.0)
    assert wm.add(late) == Late(late, slot_of(late_ts_ms, FIVE_MIN), late_by_ms)
    outputs = wm.advance(now_ms + 60 * MIN)
    assert all(o.reading != late for o in outputs if isinstance(o, Slot))


def test_first_point_of_an_asset_is_never_late() -> None:
    wm = config(max_fill_points=100).build(None)
    assert wm.advance(at(3, 0)) == []
    assert wm.watermark_ms is None
    assert isinstance(wm.add(point(at(1, 0))), Accepted)
    assert summary(wm.advance(at(3, 0))) == [("point", at(1, 0), at(1, 0), 0.0)]


def test_watermark_does_not_reverse_when_the_clock_does() -> None:
    wm = config().build(None)
    wm.add(point(at(1, 30)))
    wm.advance(at(1, 50))
    assert wm.watermark_ms == at(1, 45)
    assert wm.advance(at(1, 0)) == []
    assert wm.watermark_ms == at(1, 45)
    assert isinstance(wm.add(point(at(1, 40))), Late)  # still finalised


# ------------------------------------------------------------------ fill and gaps


@pytest.mark.parametrize(
    ("method", "filled"),
    [
        ("previous", [(at(1, 5), 0.0), (at(1, 10), 0.0)]),
        ("linear", [(at(1, 5), 1.0), (at(1, 10), 2.0)]),
        ("zero", [(at(1, 5), 0.0), (at(1, 10), 0.0)]),
        ("none", []),
    ],
)
def test_missing_slots_between_two_points_are_filled_by_the_method_and_marked(
    method: FillMethod, filled: list[tuple[int, float]]
) -> None:
    wm = config(fill=method, max_fill_points=2).build(None)
    wm.add(point(at(1, 0), 0.0))
    wm.add(point(at(1, 15), 3.0))
    got = summary(wm.advance(at(1, 20)))
    assert got == [("point", at(1, 0), at(1, 0), 0.0),
                   *[("filled", t, t, v) for t, v in filled],
                   ("point", at(1, 15), at(1, 15), 3.0)]


def test_linear_fill_interpolates_between_the_real_timestamps() -> None:
    wm = config(fill="linear").build(None)
    wm.add(point(at(1, 1), 0.0))      # slot 01:00, stamped 01:01
    wm.add(point(at(1, 16), 15.0))    # slot 01:15, stamped 01:16
    got = summary(wm.advance(at(1, 20)))
    assert [(o[1], o[3]) for o in got if o[0] == "filled"] == [(at(1, 5), 4.0), (at(1, 10), 9.0)]


def test_linear_fill_waits_for_the_next_point() -> None:
    wm = config(fill="linear", max_fill_points=3).build(None)
    wm.add(point(at(1, 0), 0.0))
    assert summary(wm.advance(at(1, 17))) == [("point", at(1, 0), at(1, 0), 0.0)]
    wm.add(point(at(1, 15), 6.0))     # slot 01:15 not yet finalised (watermark 01:10)
    assert summary(wm.advance(at(1, 20))) == [
        ("filled", at(1, 5), at(1, 5), 2.0), ("filled", at(1, 10), at(1, 10), 4.0),
        ("point", at(1, 15), at(1, 15), 6.0)]


@pytest.mark.parametrize(
    ("missing", "expected_tail"),
    [
        (0, []),
        (1, [("filled", at(1, 5), at(1, 5), 0.0)]),
        (2, [("filled", at(1, 5), at(1, 5), 0.0), ("filled", at(1, 10), at(1, 10), 0.0)]),
        (3, [("gap", at(1, 5), at(1, 20), 3, False)]),
        (7, [("gap", at(1, 5), at(1, 40), 7, False)]),
    ],
)
def test_gap_longer_than_the_fill_limit_is_reported_not_invented(
    missing: int, expected_tail: list[tuple[Any, ...]]
) -> None:
    wm = config(fill="previous", max_fill_points=2).build(None)
    nxt = at(1, 0) + (missing + 1) * FIVE_MIN
    wm.add(point(at(1, 0)))
    wm.add(point(nxt, 1.0))
    got = summary(wm.advance(nxt + FIVE_MIN))
    assert got == [("point", at(1, 0), at(1, 0), 0.0), *expected_tail, ("point", nxt, nxt, 1.0)]


def test_idle_asset_gets_no_points_invented_past_its_last_real_one() -> None:
    wm = config(fill="previous", max_fill_points=100).build(None)
    wm.add(point(at(1, 0)))
    wm.advance(at(1, 5))
    for minutes in range(10, 120, 5):
        assert wm.advance(at(1, minutes)) == []
    assert wm.watermark_ms == at(1, 110)  # the slots are finalised, empty


def test_gap_outgrowing_the_limit_while_idle_is_reported_once_then_the_rest_when_it_ends() -> None:
    wm = config(fill="previous", max_fill_points=2).build(None)
    wm.add(point(at(1, 0)))
    assert summary(wm.advance(at(1, 15))) == [("point", at(1, 0), at(1, 0), 0.0)]  # 2 missing
    assert wm.next_due_at_ms() == at(1, 20)
    assert summary(wm.advance(at(1, 20))) == [("gap", at(1, 5), at(1, 20), 3, True)]
    assert wm.advance(at(1, 40)) == []                    # reported once, not per advance
    assert wm.next_due_at_ms() is None
    wm.add(point(at(1, 40), 1.0))
    assert summary(wm.advance(at(1, 45))) == [
        ("gap", at(1, 20), at(1, 40), 4, False), ("point", at(1, 40), at(1, 40), 1.0)]


def test_open_gap_needs_no_closing_gap_when_the_next_point_follows_it() -> None:
    wm = config(fill="previous", max_fill_points=0).build(None)
    wm.add(point(at(1, 0)))
    assert summary(wm.advance(at(1, 10))) == [
        ("point", at(1, 0), at(1, 0), 0.0), ("gap", at(1, 5), at(1, 10), 1, True)]
    wm.add(point(at(1, 10), 1.0))
    assert summary(wm.advance(at(1, 15))) == [("point", at(1, 10), at(1, 10), 1.0)]


def test_idle_partition_sees_its_slots_finalised_after_the_idle_timeout() -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=2 * MIN)
    wm = config(delay_ms=0).build(None)
    clock.observe(at(1, 30))
    wm.add(point(at(1, 30)))
    assert wm.advance(clock.now_ms()) == []
    wall.advance(2 * MIN - 1)
    assert wm.advance(clock.now_ms()) == []
    wall.advance(3 * MIN + 1)                                   # 5 min of silence
    assert summary(wm.advance(clock.now_ms())) == [("point", at(1, 30), at(1, 30), 0.0)]


def test_idle_asset_sees_its_slots_finalised_by_the_other_assets_event_time() -> None:
    clock = EventTimeClock(FakeClock(0), idle_timeout_ms=None)
    quiet, busy = config().build(None), config().build(None)
    clock.observe(at(1, 30))
    quiet.add(point(at(1, 30), asset="quiet"))
    for minutes in (30, 35):
        clock.observe(at(1, minutes))
        busy.add(point(at(1, minutes), asset="busy"))
    assert [o.reading.asset_id for o in quiet.advance(clock.now_ms()) if isinstance(o, Slot)] == ["quiet"]


def test_next_due_is_the_first_pending_slot_due_time() -> None:
    wm = config(delay_ms=600 * SEC).build(None)
    assert wm.next_due_at_ms() is None
    wm.add(point(at(1, 35)))
    wm.add(point(at(1, 30)))
    assert wm.next_due_at_ms() == at(1, 45)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval_ms": 0}, "interval"),
        ({"delay_ms": -1}, "delay offset"),
        ({"fill": "cubic"}, "unknown fill method"),
        ({"max_fill_points": -1}, "max fill points"),
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"interval_ms": FIVE_MIN, "delay_ms": 0, "fill": "previous",
                            "max_fill_points": 1}
    with pytest.raises(ValueError, match=message):
        WatermarkConfig(**{**base, **kwargs})


# ------------------------------------------------------------------ properties

STEP_MS = 1_000
configs = st.builds(
    WatermarkConfig,
    interval_ms=st.sampled_from([STEP_MS]),
    delay_ms=st.sampled_from([0, 500, 2_500]),
    fill=st.sampled_from(FILL_METHODS),
    max_fill_points=st.integers(0, 4),
)
# ("add", ts_ms − clock): points near the clock, some already late, some ahead;
# ("advance", step of the clock, which may step back, and may jump past the fill limit)
ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-6_000, 3_000)),
        st.tuples(st.just("advance"), st.integers(-3_000, 8_000)),
    ),
    max_size=80,
)


def run(wm: AssetWatermark, ops: list[tuple[str, int]], now_ms: int, first_id: int = 0) -> tuple[
        list[Any], int]:
    """Apply ops; return each op's result and the clock after them. Readings carry an id."""
    log: list[Any] = []
    for i, (op, arg) in enumerate(ops, start=first_id):
        if op == "add":
            ts_ms = now_ms + arg
            log.append(wm.add(Reading("a", ts_ms, {"v": float(ts_ms % 7), "id": float(i)})))
        else:
            now_ms += arg
            log.append(wm.advance(now_ms))
    return log, now_ms


@settings(max_examples=200, deadline=None)
@given(cfg=configs, ops=ops_strategy, data=st.data())
def test_snapshot_restore_mid_stream_gives_the_same_outputs_as_uninterrupted(
    cfg: WatermarkConfig, ops: list[tuple[str, int]], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(ops)), label="split")
    whole = cfg.build(None)
    expected, _ = run(whole, ops, 0)
    first = cfg.build(None)
    head, now_ms = run(first, ops[:split], 0)
    snap = json.loads(json.dumps(first.snapshot()))
    resumed = cfg.build(snap)
    tail, _ = run(resumed, ops[split:], now_ms, first_id=len(ops[:split]))
    assert head + tail == expected
    assert resumed.snapshot() == whole.snapshot()


@settings(max_examples=200, deadline=None)
@given(cfg=configs, ops=ops_strategy)
def test_watermark_never_goes_back_and_each_point_lands_in_exactly_one_place(
    cfg: WatermarkConfig, ops: list[tuple[str, int]]
) -> None:
    wm = cfg.build(None)
    now_ms = 0
    marks: list[int] = []
    added: dict[int, Reading] = {}
    scored: list[Reading] = []
    late: list[Reading] = []
    dropped: list[Reading] = []
    covered_to_ms: int | None = None  # outputs cover disjoint, increasing slot ranges
    for i, (op, arg) in enumerate(ops):
        if op == "add":
            r = Reading("a", now_ms + arg, {"id": float(i)})
            added[i] = r
            outcome = wm.add(r)
            if isinstance(outcome, Late):
                assert wm.watermark_ms is not None and outcome.slot_ms <= wm.watermark_ms
                assert outcome.late_by_ms >= 0
                late.append(outcome.reading)
            elif isinstance(outcome, Duplicate):
                dropped.append(outcome.dropped)
        else:
            now_ms += arg
            for o in wm.advance(now_ms):
                start, end = ((o.slot_ms, o.slot_ms + cfg.interval_ms) if isinstance(o, Slot)
                              else (o.from_ms, o.to_ms))
                assert start < end
                assert covered_to_ms is None or start >= covered_to_ms
                covered_to_ms = end
                assert wm.watermark_ms is not None and start <= wm.watermark_ms
                if isinstance(o, Slot) and not o.filled:
                    scored.append(o.reading)
                if isinstance(o, Gap):
                    assert o.points == (o.to_ms - o.from_ms) // cfg.interval_ms
        if wm.watermark_ms is not None:
            marks.append(wm.watermark_ms)
        else:
            assert marks == []
    assert marks == sorted(marks)
    places = [int(r.signals["id"]) for r in scored + late + dropped + wm.pending()]
    assert sorted(places) == sorted(added)  # each point once: scored, late, dropped or pending


@settings(max_examples=200, deadline=None)
@given(
    cfg=configs,
    stamps=st.lists(st.integers(0, 30_000), unique=True, max_size=40),
    data=st.data(),
)
def test_any_arrival_order_of_the_same_on_time_points_yields_the_same_finalised_sequence(
    cfg: WatermarkConfig, stamps: list[int], data: st.DataObject
) -> None:
    ticks = list(range(0, 40_000, 700))
    points = [Reading("a", ts, {"v": float(ts % 13)}) for ts in stamps]

    def latest_tick(r: Reading) -> int:  # added before the advance that makes it due: on time
        due = cfg.due_at_ms(cfg.slot_of(r.ts_ms))
        return next(i for i, t in enumerate(ticks) if t >= due)

    def replay(arrivals: list[list[Reading]]) -> list[list[SlotOutput]]:
        wm = cfg.build(None)
        per_tick = []
        for tick_ms, arriving in zip(ticks, arrivals, strict=True):
            for r in arriving:
                wm.add(r)
            per_tick.append(wm.advance(tick_ms))
        return per_tick

    in_order: list[list[Reading]] = [[] for _ in ticks]
    in_order[0] = sorted(points, key=lambda r: r.ts_ms)
    shuffled: list[list[Reading]] = [[] for _ in ticks]
    for r in data.draw(st.permutations(points)):
        shuffled[data.draw(st.integers(0, latest_tick(r)))].append(r)
    assert replay(shuffled) == replay(in_order)
