"""Waiting until the broker has every record a step sent, before Faust acks the step's input.

``topic.send_soon`` and ``table.send_changelog`` put records in Faust's producer buffer; a
background task hands them to the Kafka client one by one. Before Faust commits offsets it
"flushes" the producer, but that does not cover every record sent:

* its buffer flush gives up as soon as no record leaves the buffer for 0.1 s
  (``ProducerBuffer.flush_atmost``), and a scoring batch can hold the event loop longer;
* a record the background task has taken from the buffer but not yet handed to the client
  (``await producer.send(...)``, waiting for metadata or room) is in neither the buffer's size
  nor the client's flush.

Either way a commit could overtake a batch's snapshots and anomalies, and a crash right after
it lost them while the offsets said the points were done (CI caught it with kill -9).

So an agent records what each step sends in a :class:`Sends` and awaits
:meth:`Sends.confirmed` before the step's input is acked: every ``FutureMessage`` resolves only
once the broker has acknowledged its record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

F = TypeVar("F", bound="asyncio.Future[Any]")
T = TypeVar("T")

#: How many sends are kept before the ones already confirmed are dropped (sends from timers
#: between two steps are confirmed by the next step; this bounds them meanwhile).
COMPACT_AT: Final = 10_000


class Sends:
    """The records sent since the last :meth:`confirmed`.

    >>> async def demo() -> list[str]:
    ...     loop = asyncio.get_running_loop()
    ...     sends, log = Sends(), []
    ...     fut = sends(loop.create_future())                  # what send_soon returned
    ...     loop.call_later(0.01, lambda: (log.append("acked"), fut.set_result(None)))
    ...     await sends.confirmed()
    ...     return log + ["confirmed"]
    >>> asyncio.run(demo())
    ['acked', 'confirmed']
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[asyncio.Future[Any]] = []

    def __call__(self, fut: F) -> F:
        """Keep ``fut`` (a ``FutureMessage``) to wait for; returns it."""
        self._pending.append(fut)
        if len(self._pending) > COMPACT_AT:
            self._pending = [f for f in self._pending if not f.done()]
        return fut

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[asyncio.Future[Any]]:
        """The records kept so far, still kept (a copy: to wait for them elsewhere too)."""
        return list(self._pending)

    def take(self) -> list[asyncio.Future[Any]]:
        """The records kept so far, handed over (to wait for elsewhere: agents/ack_pipeline.py);
        the next :meth:`confirmed` waits only for those kept after."""
        pending, self._pending = self._pending, []
        return pending

    async def confirmed(self) -> None:
        """Return once every record kept has been acknowledged by the broker (a failed send
        raises: the step is then not acked, and its input is delivered again)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


class AckedReports(Generic[T]):
    """Reports (what the worker has done: its progress) built now and handed on only once
    every record sent before them was acknowledged by the broker: what a reader acts on (a
    replay of "what has been finalised") is then on its topics, not still in a producer's
    buffer. A report handed on makes every report built before it stale: they are dropped.

    >>> async def demo() -> list[int]:
    ...     loop = asyncio.get_running_loop()
    ...     sent = loop.create_future()                     # a record not yet acknowledged
    ...     reports, out = AckedReports(), []
    ...     reports.capture(5, [sent], out.append)
    ...     await asyncio.sleep(0)
    ...     before = list(out)
    ...     sent.set_result(None)
    ...     await asyncio.sleep(0); await asyncio.sleep(0)
    ...     reports.capture(6, [], out.append)             # nothing before it: at once
    ...     return [*before, *out]
    >>> asyncio.run(demo())
    [5, 6]
    """

    def __init__(self) -> None:
        self._taken = 0
        self._reported = 0
        #: the waits still running (kept: the loop holds tasks only weakly)
        self._waits: set[asyncio.Task[None]] = set()

    def capture(self, report: T, sent_before: list[asyncio.Future[Any]],
                send: Callable[[T], None]) -> None:
        """Hand ``report`` to ``send`` once ``sent_before`` are acknowledged — unless a report
        captured later was handed on first."""
        self._taken += 1
        seq = self._taken

        def send_now() -> None:
            if seq > self._reported:
                self._reported = seq
                send(report)

        async def send_when_acknowledged() -> None:
            try:
                await asyncio.gather(*sent_before)
            except Exception:  # a refused send: the worker crashes; nothing more is reported
                return
            send_now()

        if sent_before:
            task = asyncio.ensure_future(send_when_acknowledged())
            self._waits.add(task)
            task.add_done_callback(self._waits.discard)
        else:
            send_now()
