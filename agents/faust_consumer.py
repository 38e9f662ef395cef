"""Faust's Kafka consumer with the fetch wait the worker asks for.

Faust builds its worker's aiokafka consumer with ``fetch_max_wait_ms=1500``, fixed in its
code. A broker answers a fetch as soon as it has records (Apache Kafka), or holds it up to
that wait when it had none at the request (the embedded broker, Tansu: a reading produced
just after a fetch began waited ~0.4 s at the median, 0.7 s at most, against 4 ms on Apache
Kafka — measured in docs/benchmarks.md). :class:`FetchWaitApp` makes the same consumer with
the wait the settings name (``Settings.fetch_max_wait_ms``); nothing else changes.

>>> FetchWaitApp.__mro__[1].__name__
'App'
"""

from __future__ import annotations

from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:  # an aiokafka.AIOKafkaConsumer
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", None)
        if wait is not None:
            # read by AIOKafkaConsumer.start() when it makes its fetcher (aiokafka 0.14;
            # tests/agents/test_faust_consumer.py checks the attribute)
            consumer._fetch_max_wait_ms = int(wait)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = _Consumer


class FetchWaitApp(faust.App):
    """A ``faust.App`` whose consumer waits at most ``fetch_max_wait_ms`` for a fetch (``None``:
    Faust's 1,500 ms)."""

    fetch_max_wait_ms: int | None = None

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
