"""A live, in-memory view of a small compacted topic, read whole by every worker.

The inference status topic has one partition and one record per inference: every worker
needs all of it (any worker may hold any asset), so it is read from the beginning by a plain
consumer with no group, on a thread, and kept as ``key → value``. A tombstone removes a key.
Readers ask :attr:`TopicView.version` whether anything changed since they last looked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from agents.connection import KafkaConnection
from agents.kafka_io import reader_consumer

V = TypeVar("V")


class TopicView(Generic[V]):
    """``key → decode(value)`` of every record of a one-partition topic, kept up to date.

    Records ``decode`` refuses (it raises ``ValueError``) are skipped and counted.
    """

    def __init__(self, kafka: KafkaConnection, topic: str, decode: Callable[[bytes], V]) -> None:
        self.topic = topic
        self._decode = decode
        self._consumer = reader_consumer(kafka, f"view-{topic}")
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._lock = threading.Lock()
        self._items: dict[str, V] = {}
        self.version = 0
        self.skipped = 0
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"view:{topic}", daemon=True)

    def start(self) -> TopicView[V]:
        self._thread.start()
        return self

    def items(self) -> dict[str, V]:
        with self._lock:
            return dict(self._items)

    def get(self, key: str) -> V | None:
        with self._lock:
            return self._items.get(key)

    def wait_caught_up(self, timeout_s: float) -> bool:
        """Whether the view reached the topic's end (as it was when it started) in time."""
        return self.caught_up.wait(timeout_s)

    def _run(self) -> None:
        end: int | None = None
        try:
            while not self._stop.is_set():
                msgs: list[Any] = self._consumer.consume(num_messages=500, timeout=0.2)
                changed = False
                for m in msgs:
                    if m.error() is not None or m.key() is None:
                        continue
                    key = m.key().decode()
                    value = m.value()
                    with self._lock:
                        if value is None:
                            changed |= self._items.pop(key, None) is not None
                            continue
                        try:
                            self._items[key] = self._decode(value)
                        except ValueError:
                            self.skipped += 1
                            continue
                        changed = True
                if changed:
                    with self._lock:
                        self.version += 1
                if not self.caught_up.is_set():
                    if end is None:
                        try:
                            _, end = self._consumer.get_watermark_offsets(
                                TopicPartition(self.topic, 0), timeout=2.0)
                        except Exception:  # the broker is not answering yet: try again
                            continue
                    position = self._consumer.position([TopicPartition(self.topic, 0)])[0].offset
                    if end <= 0 or position >= end:
                        self.caught_up.set()
        finally:
            self._consumer.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
