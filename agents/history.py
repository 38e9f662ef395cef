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

from agents.broker import client_config
from agents.kafka_io import reader_consumer
from streams.engine import Message

#: How far before the wanted event time the record-timestamp seek starts.
SEEK_GRACE_MS = 10 * 60_000


def read_history(bootstrap: str, topics: Sequence[str], partition: int, from_ms: int,
                 until: Mapping[str, int | None], group_id: str,
                 deadline_s: float = 60.0,
                 live_start: Callable[[str], int | None] = lambda topic: None,
                 live_wait_s: float = 5.0) -> list[Message]:
    """Every record of ``partition`` of ``topics`` from record time ``from_ms − grace`` up to
    where the live stream takes over, in offset order per topic.

    ``until[topic]`` is the live consumer's next offset when the worker has read the partition
    already. ``None`` means it has not: the read then ends where the live stream began
    (``live_start(topic)``, the first offset it delivered), waiting up to ``live_wait_s`` for
    it; if nothing came live by then, at the consumer group's (``group_id``) committed offset —
    or nowhere for a new group, whose live stream starts at the beginning. The group's offset
    alone is not trusted when the live stream did deliver: a partition with no committed offset
    has been seen to start elsewhere than the beginning. What the live stream delivers is never
    read twice. ``from_ms ≤ 0``
    starts at the beginning. ``TimeoutError`` if the read cannot finish within ``deadline_s``.
    """
    consumer = reader_consumer(bootstrap, "prefill")
    try:
        ends: dict[str, int] = {}
        waited_until = time.monotonic() + live_wait_s
        for i, topic in enumerate(topics):
            end = until.get(topic)
            # the first topic (the source) is worth waiting for; the others (by-asset) carry
            # records only when producers key by something else than the asset
            while end is None and i == 0 and time.monotonic() < waited_until:
                end = live_start(topic)
                if end is None:
                    time.sleep(0.05)  # polling the live consumer's progress, deadline-bounded
            if end is None:
                end = live_start(topic)
            if end is None:
                end = _committed(bootstrap, group_id, topic, partition)
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
                if m.error() is not None or topic not in remaining:
                    continue
                if m.offset() < ends[topic]:
                    out.append(Message(topic, partition, m.offset(), m.key(), m.value() or b""))
                if m.offset() >= ends[topic] - 1:
                    remaining.discard(topic)
        return out
    finally:
        consumer.close()


def _committed(bootstrap: str, group_id: str, topic: str, partition: int) -> int:
    """The group's committed offset of a partition; 0 when it has none (nothing before it)."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": group_id,
                                                    "enable.auto.commit": False}))
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return max(tp.offset, 0)
    finally:
        consumer.close()
