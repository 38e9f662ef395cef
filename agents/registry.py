"""The model registry: a compacted topic ``<prefix>.models`` of :class:`ModelRecord` values.

Keyed ``model_id/version``; every status change of a version is published, so the last
record of a key is the version's current state. Compaction keeps only that one on Apache
Kafka, but the embedded broker never compacts: readers replay the whole topic and keep the
last record per key, which gives the same answer either way.

Reading ends at the partition's high watermark as the *fetch responses* report it
(``get_watermark_offsets(tp, cached=True)``): the embedded broker's ListOffsets answer is
wrong after multi-record batches (docs: notes/embedded-broker.md §3). Records are also
produced one per batch, so the broker-side end offset is right too.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from agents.broker import BrokerError, client_config, ensure_topics
from agents.model_store import ModelRecord, decode_record, encode_record
from agents.settings import Settings
from agents.topics import registry_topic, topic_specs

_INVALID_OFFSET = -1001


class Registry:
    """Publish model records to, and read them back from, one deployment's registry topic."""

    def __init__(self, bootstrap: str, settings: Settings, timeout_s: float = 15.0) -> None:
        self.bootstrap = bootstrap
        self.topic = registry_topic(settings)
        self.timeout_s = timeout_s
        self._spec = [s for s in topic_specs(settings) if s.name == self.topic]
        self._ready = False
        self._producer: Producer | None = None

    def ensure_topic(self) -> None:
        """Create the registry topic (compacted, one partition) when it does not exist."""
        if not self._ready:
            ensure_topics(self.bootstrap, self._spec, self.timeout_s)
            self._ready = True

    def publish(self, record: ModelRecord) -> None:
        """Send one record, keyed ``model_id/version``, and wait until the broker has it."""
        self.ensure_topic()
        if self._producer is None:
            self._producer = Producer(client_config(
                self.bootstrap, **{"batch.num.messages": 1, "linger.ms": 0, "acks": "all"}))
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        self._producer.produce(self.topic, key=record.key.encode(), value=encode_record(record),
                               on_delivery=delivered)
        left = self._producer.flush(self.timeout_s)
        if left or errors:
            why = errors[0] if errors else f"not delivered within {self.timeout_s:.0f} s"
            raise BrokerError(f"could not publish model {record.key} to {self.topic}: {why}")

    def read(self) -> dict[str, ModelRecord]:
        """The latest record of every key: the whole topic replayed, the last record per key wins.

        A value that is not a model record is skipped; a tombstone removes its key.
        """
        self.ensure_topic()
        consumer = Consumer(client_config(self.bootstrap, **{
            "group.id": f"assetwatch-registry-{time.monotonic_ns()}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "fetch.queue.backoff.ms": 10, "enable.partition.eof": True,
        }))
        tp = TopicPartition(self.topic, 0, OFFSET_BEGINNING)
        latest: dict[str, ModelRecord] = {}
        try:
            consumer.assign([tp])
            deadline = time.monotonic() + self.timeout_s
            next_offset = 0
            while time.monotonic() < deadline:
                for m in consumer.consume(num_messages=500, timeout=0.2):
                    err = m.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            raise BrokerError(f"reading {self.topic}: {err}")
                        continue
                    next_offset = (m.offset() or 0) + 1
                    key = (m.key() or b"").decode(errors="replace")
                    value = m.value()
                    if value is None:
                        latest.pop(key, None)
                        continue
                    try:
                        latest[key] = decode_record(value)
                    except ValueError:
                        continue
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high != _INVALID_OFFSET and high >= 0 and next_offset >= high:
                    return latest
            raise BrokerError(f"could not read {self.topic} to its end within {self.timeout_s:.0f} s")
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout_s)
            self._producer = None
