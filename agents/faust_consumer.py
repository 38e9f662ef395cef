"""Faust's Kafka consumer with the fetch wait the worker asks for, and whole fetches of the
scoring agent's topics handed over in bulk (:mod:`agents.bulk_intake`).

Faust builds its worker's aiokafka consumer with ``fetch_max_wait_ms=1500``, fixed in its
code. A broker answers a fetch as soon as it has records (Apache Kafka), or holds it up to
that wait when it had none at the request (the embedded broker, Tansu: a reading produced
just after a fetch began waited ~0.4 s at the median, 0.7 s at most, against 4 ms on Apache
Kafka — measured in docs/benchmarks.md). :class:`FetchWaitApp` makes the same consumer with
the wait the settings name (``Settings.fetch_max_wait_ms``).

Where the app has a :class:`agents.bulk_intake.BulkIntake`, the records of its topics are
lifted out of each fetch, with the drain loop's bookkeeping for them (read offsets, offset gaps,
commits every ``broker_commit_every`` acks), and put in the intake as one list; the records of
every other topic go Faust's way, one event each.

>>> FetchWaitApp.__mro__[1].__name__
'App'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message, TransportT

from agents.bulk_intake import BulkIntake


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

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's records of one fetch, less those of the bulk intake's topics, which go to the
        intake as one list (after the fetch: Faust's drain loop never sees them)."""
        intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
        fetched = super().getmany(timeout)
        if intake is None:
            async for tp_message in fetched:
                yield tp_message
            return
        generation = self.app.consumer_generation_id
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        taken: list[Message] = []
        async for tp, message in fetched:
            if tp.topic not in intake.topics:
                yield tp, message
                continue
            # what Faust's drain loop does for each record it delivers (faust/transport/
            # consumer.py, _drain_messages): a record before the read offset was read already
            # (a seek back); offsets skipped over are a gap the commits may move past
            offset, last = message.offset, read_offset[tp]
            if last is None or offset >= last:
                if last and offset - last > 1 and acks_enabled_for(tp.topic):
                    await self._add_gap(tp, last + 1, offset)
                read_offset[tp] = offset
                taken.append(message)
        if taken:
            await intake.put(generation, taken)
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()


class _Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = _Consumer


class FetchWaitApp(faust.App):
    """A ``faust.App`` whose consumer waits at most ``fetch_max_wait_ms`` for a fetch (``None``:
    Faust's 1,500 ms)."""

    fetch_max_wait_ms: int | None = None
    #: where the records of the scoring agent's topics go, whole fetches at a time (None: Faust's way)
    bulk_intake: BulkIntake | None = None

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
