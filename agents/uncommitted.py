"""Records scored whose states are not stored yet: the scoring loop stores the states its
batches changed on a cadence (``Settings.snapshot_interval_ms``; ``Engine.defer_snapshots``),
not after every batch, and acks the records only with the snapshots that cover them.

At one reading per message a batch touches most of the assets it holds, so storing each
touched state with every batch cost about one changelog record per reading — making and
sending them took more of the worker than scoring (py-spy). On a cadence an asset's state is
stored once per interval however many of its readings came; a crash replays at most that
interval's input from the last commit, to the same outputs (the engine is deterministic and
anomaly keys are idempotent; tests/streams/test_deferred_snapshots.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from streams.engine import Message


@dataclass
class Uncommitted:
    """Scored records (Faust's, to ack) and their messages (for the checkpoint), held until the
    states they changed are stored: once ``interval_s`` has passed since the first of them, or
    ``most`` of them are held.

    >>> held = Uncommitted(interval_s=1.0, most=3)
    >>> held.add(["r1"], [], now=10.0); held.due(10.5), held.due(11.0)
    (False, True)
    >>> held.add(["r2", "r3"], [], now=10.6); held.due(10.6)
    True
    >>> held.take()
    (['r1', 'r2', 'r3'], [])
    >>> held.due(99.0)
    False
    """

    interval_s: float
    most: int
    records: list[Any] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    #: when the first record held was added (monotonic seconds)
    since: float | None = None

    def add(self, records: list[Any], messages: list[Message], now: float) -> None:
        if self.since is None:
            self.since = now
        self.records += records
        self.messages += messages

    def due(self, now: float) -> bool:
        """Whether the states should be stored now."""
        return self.since is not None and (now - self.since >= self.interval_s or
                                           len(self.records) >= self.most)

    def take(self) -> tuple[list[Any], list[Message]]:
        """Every record and message held, handed over."""
        out = self.records, self.messages
        self.records, self.messages, self.since = [], [], None
        return out

    def forget(self, revoked: Collection[tuple[str, int]]) -> None:
        """Drop the records of revoked partitions: never acked here, read again by the next
        owner (their states were dropped with the partitions, so nothing here stores them).

        >>> class R:
        ...     def __init__(self, p: int) -> None: self.topic, self.partition = "t", p
        >>> held = Uncommitted(1.0, 10); held.add([R(0), R(1)], [], now=0.0)
        >>> held.forget({("t", 1)}); [r.partition for r in held.records]
        [0]
        """
        self.records = [r for r in self.records if (r.topic, r.partition) not in revoked]
        self.messages = [m for m in self.messages if (m.topic, m.partition) not in revoked]
        if not self.records:
            self.since = None
