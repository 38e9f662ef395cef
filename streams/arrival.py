"""When the records this worker has read reached the broker: the clock of ``wall`` inferences.

A point is late when its record reached Kafka after its slot was due (SPEC §5.2), not when
this worker got round to reading it. So a ``wall`` inference does not finalise a slot by the
worker's own wall clock; it finalises it by the **arrival clock** of the partitions the
asset's readings come from: how far in broker time the worker has read. Two facts move it:

- a record read with broker timestamp ``ts``: every record after it on the partition reached
  the broker at ``ts`` or later (exact with ``LogAppendTime``; with ``CreateTime`` it is the
  producer's send time, capped at the worker's wall clock so a producer's fast clock cannot
  run it ahead);
- the log's end: "at ``as_of_ms`` the partition ended at offset ``end``" (a fetch response's
  high-water mark and when it came). Once everything before ``end`` is read, every record
  still to come reached the broker after ``as_of_ms``: the clock is at least ``as_of_ms``.

A worker that keeps up reads to the log end continuously, so its clock is its wall clock (to
within a fetch); one that lags — stopped, catching up, slow — moves at the pace of what it
reads, and every point that reached the broker on time is scored, however late it is read.
A partition nothing is known about yet (never read, end unknown) holds: no slot of its assets
is finalised until the glue says where reading starts and where the log ends.

>>> clocks = ArrivalClocks()
>>> tp = ("telemetry", 0)
>>> clocks.start(tp, 100)               # reading resumes at offset 100 (the committed offset)
>>> clocks.log_end(tp, 103, as_of_ms=9_000)
>>> clocks.clock_ms([tp], wall_ms=9_500) is None   # three records to read: nothing known yet
True
>>> clocks.read(tp, 100, timestamp_ms=5_000, wall_ms=9_500)
>>> clocks.clock_ms([tp], wall_ms=9_500)           # the backlog reached Kafka at 5 s
5000
>>> clocks.read(tp, 101, 5_010, 9_500); clocks.read(tp, 102, 5_020, 9_500)
>>> clocks.clock_ms([tp], wall_ms=9_600)           # caught up with the log as of 9 s
9000
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]

#: log-end marks kept per partition while the worker catches up (oldest dropped first:
#: dropping one only makes the clock wait for a later mark)
MAX_MARKS = 1_000


@dataclass(slots=True)
class PartitionArrival:
    """The arrival clock of one partition (see the module docstring)."""

    #: the next offset to read; None until the first record or :meth:`start`
    next_offset: int | None = None
    #: the broker time everything read so far had reached by; None while unknown
    clock_ms: int | None = None
    #: (end offset, as of ms) not yet read up to, oldest first
    marks: deque[tuple[int, int]] = field(default_factory=deque)
    #: whether the glue reported where this partition's log ends (else the wall clock rules)
    tracked: bool = False

    def _advance(self, to_ms: int) -> None:
        if self.clock_ms is None or to_ms > self.clock_ms:
            self.clock_ms = to_ms

    def _settle(self) -> None:
        while self.marks and self.next_offset is not None and self.next_offset >= self.marks[0][0]:
            self._advance(self.marks.popleft()[1])

    def read(self, offset: int, timestamp_ms: int | None, wall_ms: int) -> None:
        if self.next_offset is None or offset + 1 > self.next_offset:
            self.next_offset = offset + 1
        if timestamp_ms is not None and timestamp_ms > 0:
            self._advance(min(timestamp_ms, wall_ms))
        self._settle()

    def start(self, offset: int) -> None:
        if self.next_offset is None:
            self.next_offset = offset
            self._settle()

    def log_end(self, end_offset: int, as_of_ms: int) -> None:
        self.tracked = True
        if self.marks and self.marks[-1][0] >= end_offset:
            # the log has not grown since the last mark: that mark holds for a later time
            self.marks[-1] = (self.marks[-1][0], max(self.marks[-1][1], as_of_ms))
        else:
            self.marks.append((end_offset, as_of_ms))
            if len(self.marks) > MAX_MARKS:
                self.marks.popleft()
        self._settle()


class ArrivalClocks:
    """The arrival clocks of the partitions one worker reads."""

    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, PartitionArrival] = {}

    def _of(self, tp: TopicPartition) -> PartitionArrival:
        arrival = self.partitions.get(tp)
        if arrival is None:
            arrival = self.partitions[tp] = PartitionArrival()
        return arrival

    def read(self, tp: TopicPartition, offset: int, timestamp_ms: int | None, wall_ms: int) -> None:
        """A record at ``offset`` whose broker timestamp is ``timestamp_ms`` was read."""
        self._of(tp).read(offset, timestamp_ms, wall_ms)

    def start(self, tp: TopicPartition, offset: int) -> None:
        """Reading of ``tp`` begins at ``offset`` (if nothing was read from it yet)."""
        self._of(tp).start(offset)

    def log_end(self, tp: TopicPartition, end_offset: int, as_of_ms: int) -> None:
        """At ``as_of_ms`` (broker time, or the fetch's), the log of ``tp`` ended at ``end_offset``."""
        self._of(tp).log_end(end_offset, as_of_ms)

    def needs_start(self) -> list[TopicPartition]:
        """Partitions whose log end is known but not where reading them begins."""
        return [tp for tp, a in self.partitions.items() if a.tracked and a.next_offset is None]

    def clock_ms(self, tps: Iterable[TopicPartition], wall_ms: int) -> int | None:
        """The arrival clock over ``tps`` (the earliest of theirs), never past ``wall_ms``.

        A partition the glue never reported a log end for follows the wall clock (pure uses
        and tests drive the engine that way); a reported one that is not known yet holds
        (None)."""
        clock = wall_ms
        for tp in tps:
            arrival = self.partitions.get(tp)
            if arrival is None or not arrival.tracked:
                continue
            if arrival.clock_ms is None:
                return None
            clock = min(clock, arrival.clock_ms)
        return clock

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the clocks of partitions no longer assigned (a new assignment starts afresh)."""
        gone = set(partitions)
        self.partitions = {tp: a for tp, a in self.partitions.items() if tp[1] not in gone}
