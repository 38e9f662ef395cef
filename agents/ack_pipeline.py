"""Acknowledging a batch's input once its outputs are durable, while the next batch is scored.

Faust's ``take_events`` acks a batch's events as soon as the agent's body returns for the next
batch, so an agent that must not commit input before its output is acknowledged by the
broker had to wait for that acknowledgement in its body: a stop-and-wait, the scoring loop
idle for a broker round trip per batch (about a fifth of a worker's time at one reading per
message, py-spy).

:class:`AckPipeline` lets the body return at once. It holds every event of the batch with one
more reference (``Message.incref``), so ``take_events``'s own ack does not release it; a
background task then waits, batch after batch in order, for the broker to acknowledge what
each batch sent, runs the batch's ``after`` step (the agent's checkpoint), and releases the
events (``Stream.ack``): only then can Faust commit their offsets. At most ``depth`` batches
are in flight; the body waits when that many are (backpressure). A failed send stops the
pipeline: its events and every later batch's stay unacked, and the worker crashes, so they
are delivered again, as when the body itself awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


class AckPipeline:
    """Batches whose events are acked once their sends are confirmed, in order.

    >>> class Msg:
    ...     refcount = 1
    ...     def incref(self) -> None: self.refcount += 1
    >>> class Event:
    ...     def __init__(self) -> None: self.message = Msg()
    >>> async def demo() -> list[str]:
    ...     acked: list[str] = []
    ...     async def ack(event: Any) -> None:
    ...         event.message.refcount -= 1
    ...         acked.append("ack")
    ...     loop = asyncio.get_running_loop()
    ...     pipe = AckPipeline(ack, on_failure=lambda exc: None, depth=2)
    ...     sent = loop.create_future()
    ...     await pipe.put([Event()], [sent], after=lambda: acked.append("checkpoint"))
    ...     loop.call_later(0.01, sent.set_result, None)   # the broker acknowledges
    ...     await pipe.drained()
    ...     pipe.stop()
    ...     return acked
    >>> asyncio.run(demo())
    ['checkpoint', 'ack']
    """

    def __init__(self, ack: Callable[[Any], Awaitable[Any]],
                 on_failure: Callable[[BaseException], Any], depth: int = 4) -> None:
        self._ack = ack
        self._on_failure = on_failure
        self._queue: asyncio.Queue[tuple[Sequence[Any], list[asyncio.Future[Any]],
                                         Callable[[], None]]] = asyncio.Queue(maxsize=depth)
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    async def put(self, events: Sequence[Any], sends: list[asyncio.Future[Any]],
                  after: Callable[[], None]) -> None:
        """Hold ``events`` until ``sends`` are acknowledged, then run ``after`` and ack them.
        Waits while ``depth`` batches are in flight; raises once the pipeline has failed."""
        if self.failed is not None:
            raise RuntimeError("an earlier batch's output was not acknowledged") from self.failed
        for event in events:
            event.message.incref()  # take_events' ack now leaves it held, not committable
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ack-pipeline")
        await self._queue.put((events, sends, after))

    async def drained(self) -> None:
        """Return once every batch put so far is acked (or the pipeline failed)."""
        await self._queue.join()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            events, sends, after = await self._queue.get()
            try:
                if self.failed is None:
                    if sends:
                        await asyncio.gather(*sends)
                    after()
                    for event in events:
                        await self._ack(event)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a send the broker refused: nothing more is acked
                self.failed = exc
                log.error("a batch's output was not acknowledged (%s); its input stays "
                          "unacked and is delivered again", exc)
                self._on_failure(exc)
            finally:
                self._queue.task_done()
