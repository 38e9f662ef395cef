"""The hook registry: a compacted topic ``<prefix>.hooks`` of hook configs (``streams/hooks.py``).

Keyed by hook name, one partition; the last record of a key is the hook's config and a
tombstone (null value) deletes it. Like the model registry (``agents/registry.py``): records
are produced one per batch and readers replay the whole topic, keeping the last record per
key, which is right whether or not the broker compacts (the embedded broker never does).

Two readers:

* :meth:`HookStore.read` — the whole topic once, for the CLI;
* :class:`HookCache` — a worker's live view: one consumer kept open, polled without blocking
  from the delivery timer, so a hook created or changed while the worker runs is used by the
  next attempt.

The records hold the secrets (the worker needs them to sign and to log in): protect the topic
with ACLs on a shared cluster. Nothing here logs or prints a config except through
``to_public_dict`` / ``repr`` (masked).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from agents.broker import BrokerError, client_config, ensure_topics
from agents.settings import Settings
from agents.topics import topic_specs
from streams.hooks import HookConfig, decode_hook, encode_hook

log = logging.getLogger("assetwatch.hooks")

_INVALID_OFFSET = -1001


def _consumer(bootstrap: str, topic: str) -> tuple[Consumer, TopicPartition]:
    consumer = Consumer(client_config(bootstrap, **{
        "group.id": f"assetwatch-hooks-{time.monotonic_ns()}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "fetch.queue.backoff.ms": 10, "enable.partition.eof": True,
    }))
    tp = TopicPartition(topic, 0, OFFSET_BEGINNING)
    consumer.assign([tp])
    return consumer, tp


class _Replay:
    """The last config per hook name from a stream of records (tombstones delete)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.hooks: dict[str, HookConfig] = {}
        self.next_offset = 0
        self.skipped = 0

    def apply(self, messages: list[Any]) -> None:
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise BrokerError(f"reading {self.topic}: {err}")
                continue
            self.next_offset = (m.offset() or 0) + 1
            name = (m.key() or b"").decode(errors="replace")
            value = m.value()
            if value is None:
                self.hooks.pop(name, None)
                continue
            try:
                hook = decode_hook(value)
            except ValueError as exc:  # not a hook record: skipped, never fatal (message masked)
                self.skipped += 1
                log.warning("skipping record %r at offset %s of %s: %s", name, m.offset(),
                            self.topic, str(exc).split(":")[0])
                continue
            if hook.name != name:
                self.skipped += 1
                continue
            self.hooks[name] = hook

    def at_end(self, consumer: Consumer, tp: TopicPartition) -> bool:
        _low, high = consumer.get_watermark_offsets(tp, cached=True)
        return bool(high != _INVALID_OFFSET and high >= 0 and self.next_offset >= high)


class HookStore:
    """Publish hook configs to, delete them from, and read them back from the hooks topic."""

    def __init__(self, bootstrap: str, settings: Settings, timeout_s: float = 15.0) -> None:
        self.bootstrap = bootstrap
        self.topic = settings.topics.hooks
        self.timeout_s = timeout_s
        self._spec = [s for s in topic_specs(settings) if s.name == self.topic]
        self._ready = False
        self._producer: Producer | None = None

    def ensure_topic(self) -> None:
        """Create the hooks topic (compacted, one partition) when it does not exist."""
        if not self._ready:
            ensure_topics(self.bootstrap, self._spec, self.timeout_s)
            self._ready = True

    def _send(self, name: str, value: bytes | None, what: str) -> None:
        self.ensure_topic()
        if self._producer is None:
            self._producer = Producer(client_config(
                self.bootstrap, **{"batch.num.messages": 1, "linger.ms": 0, "acks": "all"}))
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        self._producer.produce(self.topic, key=name.encode(), value=value, on_delivery=delivered)
        left = self._producer.flush(self.timeout_s)
        if left or errors:
            why = errors[0] if errors else f"not delivered within {self.timeout_s:.0f} s"
            raise BrokerError(f"could not {what} hook {name!r} on {self.topic}: {why}")

    def publish(self, hook: HookConfig) -> None:
        """Create or replace a hook (keyed by its name); waits until the broker has it."""
        self._send(hook.name, encode_hook(hook), "publish")

    def delete(self, name: str) -> None:
        """Delete a hook: a tombstone under its name."""
        self._send(name, None, "delete")

    def read(self) -> dict[str, HookConfig]:
        """Every hook: the whole topic replayed, the last record per name wins."""
        self.ensure_topic()
        consumer, tp = _consumer(self.bootstrap, self.topic)
        replay = _Replay(self.topic)
        try:
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                replay.apply(consumer.consume(num_messages=500, timeout=0.2))
                if replay.at_end(consumer, tp):
                    return dict(replay.hooks)
            raise BrokerError(f"could not read {self.topic} to its end within {self.timeout_s:.0f} s")
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout_s)
            self._producer = None


class HookCache:
    """A worker's live view of the hooks topic: :meth:`poll` never blocks.

    ``ready`` turns true once the topic has been read to its end (until then the delivery
    agent attempts nothing: an unknown hook might just not be read yet).
    """

    def __init__(self, bootstrap: str, settings: Settings) -> None:
        self.bootstrap = bootstrap
        self.topic = settings.topics.hooks
        self._replay = _Replay(self.topic)
        self._consumer: Consumer | None = None
        self._tp: TopicPartition | None = None
        self.ready = False

    def poll(self) -> None:
        """Apply whatever records have arrived (non-blocking)."""
        if self._consumer is None:
            self._consumer, self._tp = _consumer(self.bootstrap, self.topic)
        try:
            self._replay.apply(self._consumer.consume(num_messages=500, timeout=0))
        except BrokerError as exc:
            log.warning("hook configs: %s", exc)
            return
        if not self.ready and self._tp is not None:
            self.ready = self._replay.at_end(self._consumer, self._tp)

    def get(self, name: str) -> HookConfig | None:
        return self._replay.hooks.get(name)

    def names(self) -> list[str]:
        return sorted(self._replay.hooks)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
