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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from agents.connection import KafkaConnection
from agents.kafka_io import reader_consumer
from streams.engine import Message

#: How far before the wanted event time the record-timestamp seek starts.
SEEK_GRACE_MS = 10 * 60_000


def read_history(kafka: KafkaConnection, topics: Sequence[str], partition: int, from_ms: int,
                 until: Mapping[str, int | None], group_id: str,
                 deadline_s: float = 60.0,
                 live_start: Callable[[str], int | None] = lambda topic: None,
                 checkpoint: Callable[[str], int | None] = lambda topic: None) -> list[Message]:
    """Every record of ``partition`` of ``topics`` from record time ``from_ms − grace`` up to
    where the live stream takes over, in offset order per topic.

    ``until[topic]`` is the live consumer's next offset when the worker has read the partition
    already. ``None`` means it has not: the read then ends where the live stream began
    (``live_start(topic)``, the first offset it delivered; the caller waits for it, see
    ``agents.prefill.LIVE_WAIT_MS``). If nothing came live, the read ends at the
    partition's checkpoint
    (``checkpoint(topic)``, how far the stored state reaches, :mod:`streams.checkpoint`): when
    the live stream then begins past it, the worker reads that hole itself before going on.
    Without a checkpoint, it ends at the consumer group's (``group_id``) committed offset, or
    nowhere for a new group, whose live stream starts at the beginning. What the live stream
    delivers is never read twice. ``from_ms ≤ 0`` starts at the beginning. ``TimeoutError`` if
    the read cannot finish within ``deadline_s``.
    """
    consumer = reader_consumer(kafka, "prefill")
    try:
        ends: dict[str, int] = {}
        for topic in topics:
            end = until.get(topic)
            if end is None:
                end = live_start(topic)
            if end is None:
                end = checkpoint(topic)
            if end is None:
                end = _committed(kafka, group_id, topic, partition)
            if end > 0:
                ends[topic] = end
        seek_ms = from_ms - SEEK_GRACE_MS
        starts: list[TopicPartition] = []
        for topic, end in ends.items():
            if seek_ms <= 0:
                starts.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
                continue
            found = consumer.offsets_for_times([TopicPartition(topic, partition, seek_ms)],
                                               timeout=10)[0]
            if 0 <= found.offset < end:
                starts.append(TopicPartition(topic, partition, found.offset))
        return _read(consumer, starts, ends, partition, deadline_s)
    finally:
        consumer.close()


def read_offsets(kafka: KafkaConnection, topic: str, partition: int, offsets: range,
                 deadline_s: float = 60.0) -> list[Message]:
    """The records of one partition at ``offsets`` (a hole the stored state never took,
    :func:`streams.checkpoint.hole`), in offset order. ``TimeoutError`` past ``deadline_s``."""
    if not offsets:
        return []
    # records retention already deleted are gone: start at the log's beginning then
    consumer = reader_consumer(kafka, "hole", **{"auto.offset.reset": "earliest"})
    try:
        return _read(consumer, [TopicPartition(topic, partition, offsets.start)],
                     {topic: offsets.stop}, partition, deadline_s)
    finally:
        consumer.close()


def _read(consumer: Consumer, starts: list[TopicPartition], ends: Mapping[str, int],
          partition: int, deadline_s: float) -> list[Message]:
    """Read each of ``starts`` up to (not including) its topic's end offset."""
    out: list[Message] = []
    if not starts:
        return out
    consumer.assign(starts)
    remaining = {tp.topic for tp in starts}
    deadline = time.monotonic() + deadline_s
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"history of partition {partition} of {sorted(remaining)} "
                               f"not read within {deadline_s:.0f} s")
        msgs: list[Any] = consumer.consume(num_messages=1000, timeout=0.2)
        for m in msgs:
            topic = m.topic()
            if m.error() is None and topic in remaining and m.offset() < ends[topic]:
                kind, ts = m.timestamp()  # kind 0: the record carries no timestamp
                out.append(Message(topic, partition, m.offset(), m.key(), m.value() or b"",
                                   ts if kind else None))
        # by position, not by the last record: offsets that hold no record (transaction
        # markers) are passed over without one
        for tp in consumer.position([TopicPartition(t, partition) for t in remaining]):
            if tp.offset >= ends[tp.topic]:
                remaining.discard(tp.topic)
    return out


def _committed(kafka: KafkaConnection, group_id: str, topic: str, partition: int) -> int:
    """The group's committed offset of a partition; 0 when it has none (nothing before it).
    A partition-level error raises (the pre-fill is tried again): read as "none", it would
    end the history at the beginning and skip what the live stream does not deliver."""
    consumer = Consumer(kafka.client_config(**{"group.id": group_id,
                                                    "enable.auto.commit": False}))
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        if tp.error is not None:
            raise RuntimeError(f"committed offset of {topic}[{partition}]: {tp.error}")
        return max(tp.offset, 0)
    finally:
        consumer.close()
