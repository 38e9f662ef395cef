"""One agent's guard against a live stream that skips records: checkpoints in its table, holes
read back from the broker (the pure part and the why: :mod:`streams.checkpoint`).

An agent whose input must not lose a record (scoring, hook delivery) keeps one
:class:`HoleGuard`: it passes each batch through :meth:`HoleGuard.fill` before taking it, and
calls :meth:`HoleGuard.checkpoint` once the broker has acknowledged what the batch sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from streams.checkpoint import Hole, checkpoint_key, find_holes, next_offsets, splice
from streams.engine import Message

log = logging.getLogger(__name__)

#: Reads the records of one partition at some offsets (agents.history.read_offsets, bound).
ReadOffsets = Callable[[str, int, range], list[Message]]
#: Pause between two attempts at reading a hole (a broker that failed the read).
HOLE_RETRY_S = 1.0


def message_of(record: Any) -> Message:
    """A Faust consumer message as the pure core's :class:`streams.engine.Message`."""
    ts = record.timestamp  # Faust gives seconds
    return Message(record.topic, record.partition, record.offset, record.key, record.value or b"",
                   round(ts * 1000) if ts else None)


class HoleGuard:
    """Checkpoints of one agent's input partitions, kept in its changelog-backed ``table``
    beside the state they vouch for, and the holes of its live stream, filled.

    ``on_hole(topic, records)`` is told of every hole read (for counts and metrics).
    ``unchecked_from`` is where a partition without a checkpoint is expected to begin: ``None``
    (nothing known; the scoring agent, whose pre-fill reads a new epoch's history up to where
    the live stream began), or ``0`` (nothing taken yet, so everything before the first live
    record is a hole; the delivery agent, whose notifications must all be delivered).
    """

    def __init__(self, table: Any, read_offsets: ReadOffsets,
                 on_hole: Callable[[str, int], None] = lambda topic, n: None,
                 unchecked_from: int | None = None) -> None:
        self.table = table
        self.read_offsets = read_offsets
        self.on_hole = on_hole
        self.unchecked_from = unchecked_from
        #: (topic, partition) → the offset after the last record taken here
        self.positions: dict[tuple[str, int], int] = {}

    def expected(self, tp: tuple[str, int]) -> int | None:
        """The offset due next on a partition: the later of the one after the last taken here
        and its checkpoint (``None`` if neither is known)."""
        stored: int | None = self.table.data.get(checkpoint_key(*tp))
        taken = self.positions.get(tp)
        if taken is None:
            log.info("%s[%d]: live from here; the stored state reaches offset %s", *tp, stored)
            return self.unchecked_from if stored is None else stored
        return taken if stored is None else max(taken, stored)

    async def fill(self, messages: Sequence[Message]) -> list[Message]:
        """The batch with the records its live stream skipped (none, normally) read from the
        broker and put back in place; the caller takes them all, in this order."""
        filled: dict[Hole, list[Message]] = {}
        for found in find_holes(messages, self.expected):
            log.warning("%s[%d]: offsets %d–%d were never taken here nor by the stored state; "
                        "reading them before going on", found.topic, found.partition,
                        found.offsets.start, found.offsets.stop - 1)
            filled[found] = await self._read(found)
            self.on_hole(found.topic, len(filled[found]))
        out = splice(messages, filled)
        for m in out:
            self.positions[(m.topic, m.partition)] = m.offset + 1
        return out

    def checkpoint(self, messages: Iterable[Message], send: Callable[[Any], Any]) -> None:
        """Once the broker has acknowledged what ``messages`` caused: store how far the state
        now reaches (never backwards), each record handed to ``send`` (an agent's ``Sends``)."""
        for (topic, partition), offset in next_offsets(
                (m.topic, m.partition, m.offset) for m in messages).items():
            key = checkpoint_key(topic, partition)
            if offset > (self.table.data.get(key) or 0):
                self.table.data[key] = offset
                send(self.table.send_changelog(partition, key, offset))

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions no longer owned: when they come back, their checkpoint says where."""
        gone = set(partitions)
        self.positions = {tp: o for tp, o in self.positions.items() if tp[1] not in gone}

    async def _read(self, found: Hole) -> list[Message]:
        """The hole's records; the batch waits (unacked) until the broker gives them."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await loop.run_in_executor(
                    None, self.read_offsets, found.topic, found.partition, found.offsets)
            except Exception as exc:  # the broker hiccupped: the batch waits for it
                log.warning("reading %s[%d] %s failed (%s); trying again", found.topic,
                            found.partition, found.offsets, exc)
                await asyncio.sleep(HOLE_RETRY_S)  # back-off before the next attempt
