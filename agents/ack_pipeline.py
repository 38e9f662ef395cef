"""Acking a batch's input once its outputs are durable, while the next batch is scored.

The scoring loop must not let Faust commit a batch's input before the broker has acknowledged
every record the batch caused (state, outputs). Waiting for that in the loop would be a
stop-and-wait: the loop idle for a broker round trip per batch (about a fifth of a worker's
time at one reading per message, py-spy).

:class:`AckPipeline` lets the loop go on at once. A background task waits, batch after batch in
order, for the broker to acknowledge what each batch sent, runs the batch's ``after`` step (the
agent's checkpoint), and only then acks its records (:func:`agents.bulk_intake.ack_records`):
Faust commits an offset once every record before it is acked. At most ``depth`` batches are in
flight; the loop waits when that many are (backpressure). A failed send stops the pipeline:
its records and every later batch's stay unacked, and the worker crashes, so they are
delivered again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


class AckPipeline:
    """Batches whose records are acked once their sends are confirmed, in order.

    >>> async def demo() -> list[str]:
    ...     acked: list[str] = []
    ...     def ack(records: Sequence[Any]) -> None:
    ...         acked.extend(f"ack {r}" for r in records)
    ...     loop = asyncio.get_running_loop()
    ...     pipe = AckPipeline(ack, on_failure=lambda exc: None, depth=2)
    ...     sent = loop.create_future()
    ...     await pipe.put(["rec-7"], [sent], after=lambda: acked.append("checkpoint"))
    ...     loop.call_later(0.01, sent.set_result, None)   # the broker acknowledges
    ...     await pipe.drained()
    ...     pipe.stop()
    ...     return acked
    >>> asyncio.run(demo())
    ['checkpoint', 'ack rec-7']
    """

    def __init__(self, ack: Callable[[Sequence[Any]], None],
                 on_failure: Callable[[BaseException], Any], depth: int = 4) -> None:
        self._ack = ack
        self._on_failure = on_failure
        self._queue: asyncio.Queue[tuple[Sequence[Any], list[asyncio.Future[Any]],
                                         Callable[[], None]]] = asyncio.Queue(maxsize=depth)
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    async def put(self, records: Sequence[Any], sends: list[asyncio.Future[Any]],
                  after: Callable[[], None]) -> None:
        """Ack ``records`` once ``sends`` are acknowledged and ``after`` has run. Waits while
        ``depth`` batches are in flight; raises once the pipeline has failed."""
        if self.failed is not None:
            raise RuntimeError("an earlier batch's output was not acknowledged") from self.failed
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ack-pipeline")
        await self._queue.put((records, sends, after))

    async def drained(self) -> None:
        """Return once every batch put so far is acked (or the pipeline failed)."""
        await self._queue.join()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            records, sends, after = await self._queue.get()
            try:
                if self.failed is None:
                    if sends:
                        await asyncio.gather(*sends)
                    after()
                    self._ack(records)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a send the broker refused: nothing more is acked
                self.failed = exc
                log.error("a batch's output was not acknowledged (%s); its input stays "
                          "unacked and is delivered again", exc)
                self._on_failure(exc)
            finally:
                self._queue.task_done()
