"""Faust's producer buffer gives up flushing on a slow send; ``drained`` does not."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.producer import ProducerBuffer

from agents.send_buffer import drained


class SlowChannel:
    """A channel whose every send takes longer than Faust's 0.1 s flush patience (a loaded
    event loop, a slow broker)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sent: list[int] = []

    async def publish_message(self, fut: SimpleNamespace, wait: bool = False) -> None:
        await asyncio.sleep(self.seconds)  # the slowness under test, not a synchronisation
        self.sent.append(fut.n)


async def _buffer_with(records: int, channel: SlowChannel) -> ProducerBuffer:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    for n in range(records):
        buffer.put(SimpleNamespace(n=n, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
    return buffer


def test_fausts_own_flush_returns_with_records_still_in_the_buffer() -> None:
    async def run() -> tuple[int, list[int]]:
        channel = SlowChannel(0.25)
        buffer = await _buffer_with(3, channel)
        await buffer.flush()
        left, sent = buffer.size, list(channel.sent)
        await drained(buffer)  # so that stopping the buffer does not refuse
        await buffer.stop()
        return left, sent

    left, sent = asyncio.run(run())
    assert left > 0, "the hazard drained() exists for: Faust's flush gave up early"
    assert len(sent) < 3


def test_drained_returns_only_once_every_record_has_left_the_buffer() -> None:
    async def run() -> tuple[int, list[int]]:
        channel = SlowChannel(0.25)
        buffer = await _buffer_with(3, channel)
        await drained(buffer)
        left = buffer.size
        await buffer.stop()
        return left, channel.sent

    left, sent = asyncio.run(run())
    assert left == 0
    # the last record was taken from the queue; its send is what the client's flush waits for
    assert sent[:2] == [0, 1]
