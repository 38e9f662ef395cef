"""Waiting until Faust's send buffer has handed every record to the Kafka client.

``topic.send_soon`` and ``table.send_changelog`` put records in Faust's producer buffer; a
background task hands them to the Kafka client one by one. Before Faust commits offsets it
"flushes" the producer, but its buffer flush gives up as soon as no record leaves the buffer for
0.1 s (``ProducerBuffer.flush_atmost``). On a loaded machine a scoring batch holds the event loop
for longer than that, so a commit could overtake a batch's snapshots and anomalies still in the
buffer, and a crash right after it lost them while the offsets said the points were done.

An agent therefore awaits :func:`drained` after each batch, before the batch is acked: every
record is then in the client, whose own flush (the next thing a commit does) waits for the
broker's acknowledgement of all of them.
"""

from __future__ import annotations

from typing import Protocol


class SendBuffer(Protocol):
    """What :func:`drained` needs of ``faust.transport.producer.ProducerBuffer``."""

    @property
    def size(self) -> int: ...

    async def flush_atmost(self, n: int, /) -> int: ...


async def drained(buffer: SendBuffer) -> None:
    """Return once ``buffer`` is empty, however long each record takes to leave it.

    >>> import asyncio
    >>> class Buffer:
    ...     def __init__(self) -> None:
    ...         self.size = 3
    ...     async def flush_atmost(self, n: int | None) -> int:
    ...         self.size -= 1  # one record left, then the flush gave up
    ...         return 1
    >>> b = Buffer()
    >>> asyncio.run(drained(b)); b.size
    0
    """
    while buffer.size:
        # each call waits for the background task to send a record, or at most 0.1 s
        await buffer.flush_atmost(buffer.size)
