"""The inference clock (SPEC §5.2): one protocol, three clocks, all injected.

``streams/`` never reads the time itself. The glue builds a :class:`WallClock` from the time
function it passes in (``WallClock(time.time_ns)``) for live operation, or an
:class:`EventTimeClock` for accelerated and historical feeds; tests use :class:`FakeClock`
and move it by hand.

>>> wall = FakeClock(1_000)
>>> clock = EventTimeClock(wall, idle_timeout_ms=60_000)
>>> clock.observe(500_000)
500000
>>> wall.advance(59_999); clock.now_ms()  # not idle yet: the largest event timestamp
60999
500000
>>> wall.advance(1); clock.now_ms()       # idle for the timeout: wall time elapsed is added
61000
560000
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

#: What an event-time clock says before it has seen any event: earlier than any timestamp,
#: so nothing is ever due on it.
BEFORE_TIME_MS: Final = -(2**63)

_NS_PER_MS: Final = 1_000_000


class Clock(Protocol):
    """Anything that tells the inference time, in integer epoch milliseconds."""

    def now_ms(self) -> int: ...


class WallClock:
    """The wall clock, read through a time function the caller injects.

    ``time_ns`` returns integer epoch nanoseconds (the glue passes ``time.time_ns``).
    The wall clock can step backwards (NTP); watermarks built on it never do, since they
    ignore a time earlier than one they have already seen.

    >>> WallClock(lambda: 1_767_225_600_123_456_789).now_ms()
    1767225600123
    """

    __slots__ = ("_time_ns",)

    def __init__(self, time_ns: Callable[[], int]) -> None:
        self._time_ns = time_ns

    def now_ms(self) -> int:
        return self._time_ns() // _NS_PER_MS


@dataclass(slots=True)
class FakeClock:
    """A clock that only moves when told: for tests and deterministic simulations.

    >>> c = FakeClock(100)
    >>> c.advance(50), c.set(10), c.now_ms()
    (150, 10, 10)
    """

    t_ms: int = 0

    def now_ms(self) -> int:
        return self.t_ms

    def advance(self, by_ms: int) -> int:
        """Move forward by ``by_ms`` ≥ 0; return the new time."""
        if by_ms < 0:
            raise ValueError(f"advance by a non-negative duration, got {by_ms} ms")
        self.t_ms += by_ms
        return self.t_ms

    def set(self, t_ms: int) -> int:
        """Jump to ``t_ms`` — backwards too, as a real wall clock can; return it."""
        self.t_ms = t_ms
        return self.t_ms


class EventTimeClock:
    """Event time: the largest event timestamp seen so far, plus an idle rule on the wall.

    Precisely, with ``base_ms`` the clock's value when the last point arrived (the largest
    timestamp observed, or what the clock already said if that was later) and
    ``elapsed_ms`` the injected wall time since that arrival:

    * ``now_ms() = base_ms``                 while ``elapsed_ms < idle_timeout_ms``;
    * ``now_ms() = base_ms + elapsed_ms``    once ``elapsed_ms ≥ idle_timeout_ms``: after the
      timeout without a point, event time runs on at the wall clock's pace, counted from the
      last arrival, so idle assets and partitions still get their slots finalised;
    * it never goes back: not when an older point arrives, not when a point ends an idle
      stretch (the next base is the later of the point and the clock), not when the wall
      clock steps backwards;
    * before any point it says :data:`BEFORE_TIME_MS` (nothing is due).

    ``idle_timeout_ms=None`` turns the idle rule off (pure event time: a feed that stops
    leaves its last slots pending). The engine keeps one clock per (inference, asset): a
    partition-wide clock would let one asset, ahead of the others on its partition, make
    their points late (per-asset batches, a lagging gateway).

    The state is three integers; :meth:`snapshot` returns them as plain data and
    ``EventTimeClock(wall, timeout, state=snapshot)`` rebuilds the same clock.

    >>> wall = FakeClock(0)
    >>> c = EventTimeClock(wall, idle_timeout_ms=None)
    >>> c.now_ms() == BEFORE_TIME_MS
    True
    >>> c.observe(300), c.observe(200), c.now_ms()  # an older point does not move it back
    (300, 300, 300)
    >>> EventTimeClock(wall, None, state=c.snapshot()).now_ms()
    300
    """

    __slots__ = ("_arrival_wall_ms", "_base_ms", "_high_ms", "idle_timeout_ms", "wall")

    def __init__(
        self,
        wall: Clock,
        idle_timeout_ms: int | None,
        state: dict[str, Any] | None = None,
    ) -> None:
        if idle_timeout_ms is not None and idle_timeout_ms < 0:
            raise ValueError(f"idle timeout must be ≥ 0 ms or None, got {idle_timeout_ms}")
        self.wall = wall
        self.idle_timeout_ms = idle_timeout_ms
        self._base_ms: int | None = None
        self._arrival_wall_ms = 0
        self._high_ms = BEFORE_TIME_MS
        if state is not None:
            self._base_ms = None if state["base_ms"] is None else int(state["base_ms"])
            self._arrival_wall_ms = int(state["arrival_wall_ms"])
            self._high_ms = int(state["high_ms"])

    def observe(self, ts_ms: int) -> int:
        """A point stamped ``ts_ms`` arrived now; return the clock after it."""
        current = self.now_ms()
        self._base_ms = max(current, ts_ms)
        self._arrival_wall_ms = self.wall.now_ms()
        self._high_ms = self._base_ms
        return self._high_ms

    def now_ms(self) -> int:
        if self._base_ms is None:
            return self._high_ms
        now = self._base_ms
        if self.idle_timeout_ms is not None:
            elapsed_ms = self.wall.now_ms() - self._arrival_wall_ms
            if elapsed_ms >= self.idle_timeout_ms:
                now += elapsed_ms
        self._high_ms = max(self._high_ms, now)
        return self._high_ms

    def snapshot(self) -> dict[str, Any]:
        return {
            "base_ms": self._base_ms,
            "arrival_wall_ms": self._arrival_wall_ms,
            "high_ms": self._high_ms,
        }
