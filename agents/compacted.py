"""A small compacted registry topic (one partition, keyed) published to and read back into a dict.

The model registry (``agents/registry.py``) and the hook registry (``agents/hook_store.py``)
are such topics. Records are produced one per batch (so the broker's end offset is right);
readers read the whole topic from the beginning and keep the last record per key, with a
tombstone (null value) deleting its key — the right answer whether or not the broker compacts
(the embedded broker never does).

Reading ends at the partition's high watermark as the *fetch responses* report it
(``get_watermark_offsets(tp, cached=True)``): the embedded broker's ListOffsets answer is
wrong after multi-record batches (docs/embedded-broker.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from agents.broker import BrokerError, ensure_topics
from agents.connection import KafkaConnection
from agents.settings import Settings
from agents.topics import topic_specs

V = TypeVar("V")

_INVALID_OFFSET = -1001

#: how a record's value becomes a ``V`` (given its key); ``ValueError`` skips the record
Decode = Callable[[str, bytes], V]


def from_beginning_consumer(kafka: KafkaConnection, topic: str,
                            purpose: str) -> tuple[Consumer, TopicPartition]:
    """A consumer (no group join, nothing committed) assigned partition 0 from the beginning."""
    consumer = Consumer(kafka.client_config(**{
        "group.id": f"assetwatch-{purpose}-{time.monotonic_ns()}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "fetch.queue.backoff.ms": 10, "enable.partition.eof": True,
    }))
    tp = TopicPartition(topic, 0, OFFSET_BEGINNING)
    consumer.assign([tp])
    return consumer, tp


class LatestByKey(Generic[V]):
    """The last value per key from the records of one partition (tombstones delete).

    A record ``decode`` refuses is skipped and counted; with ``log``, also logged (the
    reason up to its first ``:`` only, as what follows may quote the record).
    """

    def __init__(self, topic: str, decode: Decode[V], log: logging.Logger | None = None) -> None:
        self.topic = topic
        self.items: dict[str, V] = {}
        self.next_offset = 0
        self.skipped = 0
        self._decode = decode
        self._log = log

    def apply(self, messages: list[Any]) -> None:
        """Take consumed messages in order; a broker error other than end-of-partition raises."""
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise BrokerError(f"reading {self.topic}: {err}")
                continue
            self.next_offset = (m.offset() or 0) + 1
            self._take((m.key() or b"").decode(errors="replace"), m.value(), m.offset())

    def _take(self, key: str, value: bytes | None, offset: int) -> None:
        if value is None:
            self.items.pop(key, None)
            return
        try:
            self.items[key] = self._decode(key, value)
        except ValueError as exc:  # not a record of this topic: skipped, never fatal
            self.skipped += 1
            if self._log is not None:
                self._log.warning("skipping record %r at offset %s of %s: %s", key, offset,
                                  self.topic, str(exc).split(":")[0])

    def at_end(self, consumer: Consumer, tp: TopicPartition) -> bool:
        """Whether every record up to the high watermark the fetches reported is applied."""
        _low, high = consumer.get_watermark_offsets(tp, cached=True)
        return bool(high != _INVALID_OFFSET and high >= 0 and self.next_offset >= high)


class CompactedTopic(Generic[V]):
    """Publish keyed records to, and read back every key's last value from, one such topic.

    ``decode`` reads a value (``ValueError``: skipped, logged to ``log`` if given);
    ``purpose`` names the reading consumers (``assetwatch-<purpose>-…``).
    """

    def __init__(self, kafka: KafkaConnection, settings: Settings, topic: str, decode: Decode[V], *,
                 purpose: str, timeout_s: float = 15.0, log: logging.Logger | None = None) -> None:
        self.kafka = kafka
        self.topic = topic
        self.timeout_s = timeout_s
        self._decode = decode
        self._log = log
        self._purpose = purpose
        self._spec = [s for s in topic_specs(settings) if s.name == topic]
        self._ready = False
        self._producer: Producer | None = None

    def ensure_topic(self) -> None:
        """Create the topic (compacted, one partition) when it does not exist."""
        if not self._ready:
            ensure_topics(self.kafka, self._spec, self.timeout_s)
            self._ready = True

    def send(self, key: str, value: bytes | None, failure: str) -> None:
        """Produce one record (``None``: a tombstone) and wait until the broker has it;
        else ``BrokerError("<failure>: <why>")``."""
        self.ensure_topic()
        if self._producer is None:
            self._producer = Producer(self.kafka.client_config(
                **{"batch.num.messages": 1, "linger.ms": 0, "acks": "all"}))
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        self._producer.produce(self.topic, key=key.encode(), value=value, on_delivery=delivered)
        left = self._producer.flush(self.timeout_s)
        if left or errors:
            why = errors[0] if errors else f"not delivered within {self.timeout_s:.0f} s"
            raise BrokerError(f"{failure}: {why}")

    def latest_by_key(self) -> LatestByKey[V]:
        """An empty reading of this topic's last value per key, with its decoder."""
        return LatestByKey(self.topic, self._decode, self._log)

    def read(self) -> dict[str, V]:
        """The last value of every key: the whole topic read, to its end."""
        self.ensure_topic()
        consumer, tp = from_beginning_consumer(self.kafka, self.topic, self._purpose)
        latest = self.latest_by_key()
        try:
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                latest.apply(consumer.consume(num_messages=500, timeout=0.2))
                if latest.at_end(consumer, tp):
                    return dict(latest.items)
            raise BrokerError(f"could not read {self.topic} to its end within {self.timeout_s:.0f} s")
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout_s)
            self._producer = None
