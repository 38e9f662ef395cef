"""The hook registry: a compacted topic ``<prefix>.hooks`` of hook configs (``streams/hooks.py``).

Keyed by hook name, one partition; the last record of a key is the hook's config and a
tombstone (null value) deletes it. Like the model registry (``agents/registry.py``), it is a
:class:`agents.compacted.CompactedTopic`: records are produced one per batch and readers
read the whole topic, keeping the last record per key, which is right whether or not the
broker compacts (the embedded broker never does). A record whose hook name is not its key is
skipped.

Two readers:

* :meth:`HookStore.read` — the whole topic once, for the CLI;
* :class:`HookCache` — a worker's live view: one consumer kept open, polled without blocking
  from the delivery timer, so a hook created or changed while the worker runs is used by the
  next attempt.

The records hold references to the secrets (``env:NAME``, ``file:/path``), never their values:
``encode_hook`` refuses a config holding one, and the worker resolves the references at each
delivery attempt (``agents/hooks/secrets.py``). Records of the first format, whose secrets were
values, are still read (docs/hooks.md, "Migrating"). Nothing here logs or prints a config
except through ``to_public_dict`` / ``repr`` (references shown, values masked).
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from agents.broker import BrokerError
from agents.compacted import CompactedTopic, LatestByKey, from_beginning_consumer
from agents.connection import KafkaConnection
from agents.settings import Settings
from streams.hooks import HookConfig, decode_hook, encode_hook

log = logging.getLogger("assetwatch.hooks")

PURPOSE = "hooks"  # names the reading consumers: assetwatch-hooks-…


def _decode(name: str, value: bytes) -> HookConfig:
    """The hook config of a record keyed ``name``; ``ValueError`` when it is not one."""
    hook = decode_hook(value)
    if hook.name != name:
        raise ValueError(f"a record of hook {hook.name!r} under another key")
    return hook


class HookStore(CompactedTopic[HookConfig]):
    """Publish hook configs to, delete them from, and read them back from the hooks topic."""

    def __init__(self, kafka: KafkaConnection, settings: Settings, timeout_s: float = 15.0) -> None:
        super().__init__(kafka, settings, settings.topics.hooks, _decode, purpose=PURPOSE,
                         timeout_s=timeout_s, log=log)

    def publish(self, hook: HookConfig) -> None:
        """Create or replace a hook (keyed by its name); waits until the broker has it."""
        self.send(hook.name, encode_hook(hook), f"could not publish hook {hook.name!r} on {self.topic}")

    def delete(self, name: str) -> None:
        """Delete a hook: a tombstone under its name."""
        self.send(name, None, f"could not delete hook {name!r} on {self.topic}")


class HookCache:
    """A worker's live view of the hooks topic: :meth:`poll` never blocks.

    ``ready`` turns true once the topic has been read to its end (until then the delivery
    agent attempts nothing: an unknown hook might just not be read yet).
    """

    def __init__(self, kafka: KafkaConnection, settings: Settings) -> None:
        self.kafka = kafka
        self.topic = settings.topics.hooks
        self._latest = LatestByKey(self.topic, _decode, log)
        self._consumer: Consumer | None = None
        self._tp: TopicPartition | None = None
        self.ready = False

    def poll(self) -> None:
        """Apply whatever records have arrived (non-blocking)."""
        if self._consumer is None:
            self._consumer, self._tp = from_beginning_consumer(self.kafka, self.topic, PURPOSE)
        try:
            self._latest.apply(self._consumer.consume(num_messages=500, timeout=0))
        except BrokerError as exc:
            log.warning("hook configs: %s", exc)
            return
        if not self.ready and self._tp is not None:
            self.ready = self._latest.at_end(self._consumer, self._tp)

    def get(self, name: str) -> HookConfig | None:
        return self._latest.items.get(name)

    def names(self) -> list[str]:
        return sorted(self._latest.items)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
