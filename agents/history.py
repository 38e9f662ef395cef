"""Reading a partition's history by timestamp, for window pre-fill (SPEC §5.1).

Kafka finds the first offset whose *record* timestamp is at or after a time
(``offsets_for_times``); the readings' own event times are filtered afterwards by the engine's
pre-fill. So the seek is a lower bound: it starts ``SEEK_GRACE_MS`` before the time wanted,
which covers producers that stamp records up to that much after the event (the usual case:
records are stamped when sent, after the reading). The read stops at the end it sees in the
fetch responses: what arrives later comes through the live stream, and what both deliver is
taken once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from agents.kafka_io import reader_consumer
from streams.engine import Message

#: How far before the wanted event time the record-timestamp seek starts.
SEEK_GRACE_MS = 10 * 60_000


def read_history(bootstrap: str, topics: Sequence[str], partition: int, from_ms: int,
                 deadline_s: float = 60.0) -> list[Message]:
    """Every record of ``partition`` of ``topics`` from record time ``from_ms − grace`` up to
    their end, in offset order per topic.

    ``from_ms ≤ 0`` reads from the beginning. Raises ``TimeoutError`` if the read cannot finish
    within ``deadline_s``.
    """
    consumer = reader_consumer(bootstrap, "prefill")
    try:
        seek_ms = from_ms - SEEK_GRACE_MS
        starts: list[TopicPartition] = []
        for topic in topics:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            if seek_ms <= 0:
                starts.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
            else:
                found = consumer.offsets_for_times([TopicPartition(topic, partition, seek_ms)],
                                                   timeout=10)[0]
                offset = found.offset if found.offset >= 0 else high
                if offset < high:
                    starts.append(TopicPartition(topic, partition, offset))
        out: list[Message] = []
        if not starts:
            return out
        consumer.assign(starts)
        # The end is the high watermark of the fetch responses (``cached=True``), not of a
        # ListOffsets query, which some brokers answer short (docs/embedded-broker.md).
        remaining = {tp.topic: tp.offset for tp in starts}
        deadline = time.monotonic() + deadline_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"history of partition {partition} of {sorted(remaining)} "
                                   f"not read within {deadline_s:.0f} s")
            msgs: list[Any] = consumer.consume(num_messages=1000, timeout=0.2)
            for m in msgs:
                if m.error() is None and m.topic() in remaining:
                    out.append(Message(m.topic(), partition, m.offset(), m.key(), m.value() or b""))
                    remaining[m.topic()] = m.offset() + 1
            for topic, next_offset in list(remaining.items()):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
                if high is not None and high >= 0 and next_offset >= 0 and next_offset >= high:
                    del remaining[topic]
        return out
    finally:
        consumer.close()
