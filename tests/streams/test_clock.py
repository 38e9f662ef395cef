"""Clocks: wall (injected), fake (moved by hand), event time with an idle timeout."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.clock import BEFORE_TIME_MS, Clock, EventTimeClock, FakeClock, WallClock


def test_wall_clock_reads_the_injected_time_function_in_ms() -> None:
    ticks = iter([1_000_000_000_999_999, 1_000_000_001_000_000])
    clock = WallClock(lambda: next(ticks))
    assert [clock.now_ms(), clock.now_ms()] == [1_000_000_000, 1_000_000_001]


def test_all_clocks_satisfy_the_protocol() -> None:
    wall = FakeClock(0)
    clocks: list[Clock] = [WallClock(lambda: 0), wall, EventTimeClock(wall, idle_timeout_ms=None)]
    assert all(isinstance(c.now_ms(), int) for c in clocks)


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(10)
    assert clock.now_ms() == clock.now_ms() == 10
    assert clock.advance(5) == 15
    assert clock.set(3) == 3  # a wall clock can step back; the fake one can be told to


def test_fake_clock_does_not_advance_by_a_negative_duration() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        FakeClock().advance(-1)


def test_event_clock_says_before_time_until_a_point_arrives() -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=1_000)
    wall.advance(10**9)
    assert clock.now_ms() == BEFORE_TIME_MS


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        ([100], 100),
        ([100, 300, 200], 300),
        ([300, 100, 200], 300),
        ([5, 5, 5], 5),
    ],
)
def test_event_clock_is_the_largest_timestamp_seen(stamps: list[int], expected: int) -> None:
    clock = EventTimeClock(FakeClock(0), idle_timeout_ms=None)
    for ts in stamps:
        clock.observe(ts)
    assert clock.now_ms() == expected


@pytest.mark.parametrize(
    ("idle_for_ms", "expected"),
    [
        (0, 1_000),
        (59_999, 1_000),          # silent for less than the timeout: event time stands still
        (60_000, 61_000),         # at the timeout: advanced by all the wall time elapsed
        (90_000, 91_000),
    ],
)
def test_event_clock_advances_with_the_wall_after_the_idle_timeout(
    idle_for_ms: int, expected: int
) -> None:
    wall = FakeClock(5_000_000)
    clock = EventTimeClock(wall, idle_timeout_ms=60_000)
    clock.observe(1_000)
    wall.advance(idle_for_ms)
    assert clock.now_ms() == expected


def test_event_clock_without_idle_timeout_never_advances_on_its_own() -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=None)
    clock.observe(1_000)
    wall.advance(10**12)
    assert clock.now_ms() == 1_000


def test_a_new_point_restarts_the_idle_timeout() -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=100)
    clock.observe(1_000)
    wall.advance(99)
    clock.observe(1_010)
    wall.advance(99)
    assert clock.now_ms() == 1_010
    wall.advance(1)
    assert clock.now_ms() == 1_010 + 100


def test_watermark_does_not_reverse_when_an_old_point_ends_an_idle_stretch() -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=100)
    clock.observe(1_000)
    wall.advance(500)
    assert clock.now_ms() == 1_500
    assert clock.observe(1_200) == 1_500  # older than the clock: the clock stays
    assert clock.now_ms() == 1_500
    wall.advance(100)
    assert clock.now_ms() == 1_600       # idle again, counted from the clock at that arrival


def test_watermark_does_not_reverse_when_the_wall_clock_steps_back() -> None:
    wall = FakeClock(10_000)
    clock = EventTimeClock(wall, idle_timeout_ms=100)
    clock.observe(1_000)
    wall.advance(1_000)
    assert clock.now_ms() == 2_000
    wall.set(0)
    assert clock.now_ms() == 2_000


def test_event_clock_rebuilt_from_snapshot_goes_on_identically() -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=100)
    clock.observe(1_000)
    wall.advance(150)
    clock.now_ms()
    snap = json.loads(json.dumps(clock.snapshot()))
    again = EventTimeClock(wall, idle_timeout_ms=100, state=snap)
    for step in (0, 10, 300):
        wall.advance(step)
        assert again.now_ms() == clock.now_ms()
    assert again.observe(5_000) == clock.observe(5_000)


def test_negative_idle_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="idle timeout"):
        EventTimeClock(FakeClock(), idle_timeout_ms=-1)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("observe"), st.integers(-10**6, 10**6)),
        st.tuples(st.just("wall"), st.integers(-10**5, 10**5)),
        st.tuples(st.just("now"), st.just(0)),
    ),
    max_size=60,
)


@given(ops=ops, timeout=st.one_of(st.none(), st.integers(0, 10**5)))
def test_event_clock_never_goes_back(ops: list[tuple[str, int]], timeout: int | None) -> None:
    wall = FakeClock(0)
    clock = EventTimeClock(wall, idle_timeout_ms=timeout)
    seen = [clock.now_ms()]
    largest = BEFORE_TIME_MS
    for op, arg in ops:
        if op == "observe":
            seen.append(clock.observe(arg))
            largest = max(largest, arg)
        elif op == "wall":
            wall.set(wall.now_ms() + arg)  # the wall clock may step either way
        seen.append(clock.now_ms())
        assert seen[-1] >= largest  # never behind the largest event timestamp
    assert seen == sorted(seen)
