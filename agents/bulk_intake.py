"""Whole fetches of the scoring agent's input, taken without Faust's per-record path.

Faust hands an agent each record as its own event: the consumer's drain loop awaits a
callback per record (racing a task on the flow-control event), the conductor decodes the
record into an event and queues it on the agent's channel, and the agent's stream takes it
back out — Faust's floor, about 100 µs a record on this machine (docs/benchmarks.md), more than
the engine spends scoring a reading. The scoring agent takes batches anyway, so the worker's
consumer (:mod:`agents.faust_consumer`) lifts the records of the intake's topics out of each
fetch as one list and :meth:`BulkIntake.put` s it here; the scoring loop :meth:`take` s them.

What Faust's path did per record and the bulk path keeps:

* the drain loop's read offsets and offset gaps (compaction, transaction markers), so commits
  move past them (the consumer does that as it lifts the records);
* flow control in a rebalance: nothing is taken while Faust has the flow suspended, and a
  fetch of an earlier consumer generation is dropped — the new assignment seeks back to the
  committed offsets and reads it again (Faust clears its agents' queues for the same reason);
* commits only of what was acked: the scoring loop acks a record (:func:`ack_records`) once
  the broker has acknowledged everything its batch caused (:mod:`agents.ack_pipeline`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class _App(Protocol):
    """What the intake reads of the Faust app: its flow control and consumer generation."""

    flow_control: Any
    consumer_generation_id: int


class BulkIntake:
    """Fetched records of ``topics``, a list per fetch, at most ``depth`` fetches held.

    >>> class App:
    ...     class flow_control:
    ...         @staticmethod
    ...         async def acquire() -> None: ...
    ...     consumer_generation_id = 2
    >>> async def demo() -> list[int]:
    ...     intake = BulkIntake({"telemetry"})
    ...     await intake.put(1, [10, 11])       # fetched before the last rebalance: dropped
    ...     await intake.put(2, [12, 13, 14])
    ...     return await intake.take(App())
    >>> asyncio.run(demo())
    [12, 13, 14]
    """

    def __init__(self, topics: Iterable[str], depth: int = 4) -> None:
        self.topics = frozenset(topics)
        self._queue: asyncio.Queue[tuple[int, list[Any]]] = asyncio.Queue(maxsize=depth)
        #: records dropped because a rebalance came between their fetch and their turn
        self.dropped = 0

    async def put(self, generation: int, records: list[Any]) -> None:
        """One fetch's records of the intake's topics, read in consumer ``generation``; waits
        while ``depth`` fetches are held (the consumer then fetches no more: backpressure)."""
        await self._queue.put((generation, records))

    async def take(self, app: _App) -> list[Any]:
        """The next fetch's records of the current consumer generation, once the flow is on."""
        while True:
            generation, records = await self._queue.get()
            await app.flow_control.acquire()
            if generation == app.consumer_generation_id:
                return records
            self.dropped += len(records)

    def clear(self) -> None:
        """Drop every fetch held (partitions revoked: the next owner reads them)."""
        while not self._queue.empty():
            self.dropped += len(self._queue.get_nowait()[1])


class _Consumer(Protocol):
    def ack(self, message: Any) -> bool: ...


def ack_records(consumer: _Consumer, records: Sequence[Any]) -> None:
    """Ack ``records`` (Faust consumer messages) with ``consumer``: Faust commits an offset once
    every record before it is acked."""
    for record in records:
        consumer.ack(record)


def chunks(records: list[Any], size: int) -> list[list[Any]]:
    """``records`` in lists of at most ``size`` (a large fetch scored in bounded batches).

    >>> chunks([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
    >>> chunks([1, 2], 5)
    [[1, 2]]
    """
    if len(records) <= size:
        return [records]
    return [records[i:i + size] for i in range(0, len(records), size)]
