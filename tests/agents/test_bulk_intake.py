"""The bulk intake: whole fetches for the scoring loop, never one from before a rebalance."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.bulk_intake import BulkIntake, ack_records, chunks


class FlowControl:
    """Faust's flow control as the intake sees it: suspended in a rebalance."""

    def __init__(self) -> None:
        self.on = asyncio.Event()
        self.on.set()

    async def acquire(self) -> None:
        await self.on.wait()


class App:
    def __init__(self) -> None:
        self.flow_control = FlowControl()
        self.consumer_generation_id = 1


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_a_fetch_from_before_a_rebalance_is_dropped_and_counted() -> None:
    async def scenario() -> tuple[list[int], int]:
        app, intake = App(), BulkIntake({"t"})
        await intake.put(1, [1, 2])
        app.consumer_generation_id = 2  # a rebalance: Faust seeks back to the committed offsets
        await intake.put(2, [1, 2, 3])
        return await intake.take(app), intake.dropped

    assert run(scenario()) == ([1, 2, 3], 2)


def test_nothing_is_taken_while_the_flow_is_suspended() -> None:
    async def scenario() -> tuple[bool, list[int]]:
        app, intake = App(), BulkIntake({"t"})
        app.flow_control.on.clear()  # a rebalance began
        await intake.put(1, [7])
        taking = asyncio.ensure_future(intake.take(app))
        for _ in range(10):
            await asyncio.sleep(0)
        waited = not taking.done()
        app.flow_control.on.set()
        return waited, await taking

    assert run(scenario()) == (True, [7])


def test_revoked_partitions_fetches_are_cleared() -> None:
    async def scenario() -> tuple[int, bool]:
        intake = BulkIntake({"t"})
        await intake.put(1, [1, 2])
        await intake.put(1, [3])
        intake.clear()
        return intake.dropped, intake._queue.empty()

    assert run(scenario()) == (3, True)


def test_the_consumer_waits_when_depth_fetches_are_held() -> None:
    async def scenario() -> bool:
        app, intake = App(), BulkIntake({"t"}, depth=1)
        await intake.put(1, [1])
        second = asyncio.ensure_future(intake.put(1, [2]))
        for _ in range(10):
            await asyncio.sleep(0)
        blocked = not second.done()
        assert await intake.take(app) == [1]
        await asyncio.wait_for(second, 1)
        return blocked

    assert run(scenario())


def test_records_are_acked_one_by_one_in_order_and_fetches_cut_to_the_batch_size() -> None:
    class Consumer:
        def __init__(self) -> None:
            self.acked: list[int] = []

        def ack(self, message: Any) -> bool:
            self.acked.append(message)
            return True

    consumer = Consumer()
    ack_records(consumer, [3, 4, 5])
    assert consumer.acked == [3, 4, 5]
    assert chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
