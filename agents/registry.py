"""The model registry: a compacted topic ``<prefix>.models`` of :class:`ModelRecord` values.

Keyed ``model_id/version``; every status change of a version is published, so the last
record of a key is the version's current state. Compaction keeps only that one on Apache
Kafka, but the embedded broker never compacts: readers replay the whole topic and keep the
last record per key, which gives the same answer either way (:class:`agents.compacted.CompactedTopic`:
one record per batch, reading to the high watermark the fetch responses report). A value that
is not a model record is skipped; a tombstone removes its key.
"""

from __future__ import annotations

from agents.compacted import CompactedTopic
from agents.connection import KafkaConnection
from agents.model_store import ModelRecord, decode_record, encode_record
from agents.settings import Settings
from agents.topics import registry_topic


def _decode(_key: str, value: bytes) -> ModelRecord:
    return decode_record(value)


class Registry(CompactedTopic[ModelRecord]):
    """Publish model records to, and read them back from, one deployment's registry topic."""

    def __init__(self, kafka: KafkaConnection, settings: Settings, timeout_s: float = 15.0) -> None:
        super().__init__(kafka, settings, registry_topic(settings), _decode, purpose="registry",
                         timeout_s=timeout_s)

    def publish(self, record: ModelRecord) -> None:
        """Send one record, keyed ``model_id/version``, and wait until the broker has it."""
        self.send(record.key, encode_record(record),
                  f"could not publish model {record.key} to {self.topic}")
