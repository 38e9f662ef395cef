"""Faust's flush does not cover every record sent; waiting for each record's future does."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.producer import ProducerBuffer

from agents.send_buffer import Sends


class SlowChannel:
    """A channel whose every send takes longer than Faust's 0.1 s flush patience (a loaded
    event loop, a slow broker), then acknowledges the record (resolves its future)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.acked: list[int] = []

    async def publish_message(self, fut: SimpleNamespace, wait: bool = False) -> None:
        await asyncio.sleep(self.seconds)  # the slowness under test, not a synchronisation
        self.acked.append(fut.n)
        fut.future.set_result(fut.n)


async def _buffer() -> ProducerBuffer:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    return buffer


def _send(buffer: ProducerBuffer, channel: SlowChannel, n: int) -> asyncio.Future[int]:
    """What ``topic.send_soon`` does: a future message into the buffer, returned."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    buffer.put(SimpleNamespace(n=n, future=future, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
    return future


def test_fausts_own_flush_returns_before_every_record_is_acknowledged() -> None:
    async def run() -> tuple[int, list[int]]:
        channel = SlowChannel(0.25)
        buffer = await _buffer()
        futures = [_send(buffer, channel, n) for n in range(3)]
        await buffer.flush()
        acked = list(channel.acked)
        await asyncio.gather(*futures)  # so that stopping the buffer does not refuse
        await buffer.stop()
        return len(futures), acked

    sent, acked = asyncio.run(run())
    assert len(acked) < sent, "the hazard Sends exists for: Faust's flush gave up early"


def test_confirmed_returns_only_once_every_record_kept_is_acknowledged() -> None:
    async def run() -> list[int]:
        channel = SlowChannel(0.25)
        buffer = await _buffer()
        sends = Sends()
        for n in range(3):
            sends(_send(buffer, channel, n))
        await sends.confirmed()
        acked = list(channel.acked)
        await buffer.stop()
        return acked

    assert asyncio.run(run()) == [0, 1, 2]


def test_confirmed_forgets_what_it_confirmed() -> None:
    async def run() -> int:
        sends = Sends()
        fut = sends(asyncio.get_running_loop().create_future())
        fut.set_result(None)
        await sends.confirmed()
        return len(sends)

    assert asyncio.run(run()) == 0
