"""Plain confluent-kafka helpers for the CLI, demo, benchmark and tests (not the worker)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from agents.connection import KafkaConnection
from streams.codec import encode_telemetry
from streams.records import Reading


def make_producer(kafka: KafkaConnection, **extra: Any) -> Producer:
    """A producer whose keyed messages land on the key's home partition (Kafka's murmur2)."""
    return Producer(kafka.client_config(**{"linger.ms": 5, "partitioner": "murmur2_random", **extra}))


def produce_readings(
    producer: Producer, topic: str, readings: Iterable[Reading], per_message: int = 1
) -> int:
    """Send readings keyed by asset id, ``per_message`` readings of one asset per message."""
    sent = 0
    pending: dict[str, list[Reading]] = {}
    for r in readings:
        group = pending.setdefault(r.asset_id, [])
        group.append(r)
        if len(group) >= per_message:
            _send(producer, topic, group)
            sent += 1
            pending[r.asset_id] = []
    for group in pending.values():
        if group:
            _send(producer, topic, group)
            sent += 1
    return sent


def _send(producer: Producer, topic: str, group: list[Reading]) -> None:
    value = encode_telemetry(group)
    while True:
        try:
            producer.produce(topic, key=group[0].asset_id.encode(), value=value)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def reader_consumer(kafka: KafkaConnection, purpose: str, **extra: Any) -> Consumer:
    """A consumer for ``assign()`` reads (no group join, nothing committed), quick to fetch."""
    return Consumer(kafka.client_config(**{
        "group.id": f"{purpose}-{uuid.uuid4().hex}", "enable.auto.commit": False,
        "fetch.wait.max.ms": 100, "fetch.queue.backoff.ms": 10, **extra}))


def topic_reader(kafka: KafkaConnection, topic: str, partitions: int) -> Consumer:
    """A consumer assigned every partition of ``topic`` from the beginning (no group join)."""
    consumer = reader_consumer(kafka, "reader")
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    return consumer


def poll_values(consumer: Consumer, timeout_s: float) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of the records that arrive within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        msgs: Sequence[Any] = consumer.consume(num_messages=500, timeout=min(left, 0.2))
        for m in msgs:
            if m.error() is None:
                yield m.key(), m.value()
