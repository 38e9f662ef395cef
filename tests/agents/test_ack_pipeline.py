"""The ack pipeline: a batch's input is released only once its output is acknowledged, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.ack_pipeline import AckPipeline


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 5))


async def let_the_loop_run() -> None:
    """Give every ready task its turn (no time passes: what could happen now, has)."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_records_are_held_until_their_sends_are_acknowledged() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        loop = asyncio.get_running_loop()
        acked: list[int] = []
        pipe = AckPipeline(acked.extend, on_failure=lambda exc: None)
        sent = loop.create_future()
        await pipe.put([0, 1], [sent], after=lambda: None)
        await let_the_loop_run()
        before = list(acked)
        sent.set_result(None)
        await pipe.drained()
        pipe.stop()
        return before, acked

    before, after = run(scenario())
    assert before == []
    assert after == [0, 1]


def test_batches_are_acked_in_order_even_when_a_later_one_is_confirmed_first() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        log: list[str] = []

        def ack(records: list[int]) -> None:
            log.extend(f"ack {r}" for r in records)

        pipe = AckPipeline(ack, on_failure=lambda exc: None)
        first, second = loop.create_future(), loop.create_future()
        await pipe.put([1], [first], after=lambda: log.append("checkpoint 1"))
        await pipe.put([2], [second], after=lambda: log.append("checkpoint 2"))
        second.set_result(None)
        await let_the_loop_run()
        assert log == []  # the second waits for the first
        first.set_result(None)
        await pipe.drained()
        pipe.stop()
        return log

    assert run(scenario()) == ["checkpoint 1", "ack 1", "checkpoint 2", "ack 2"]


def test_a_refused_send_leaves_its_batch_and_later_ones_unacked() -> None:
    async def scenario() -> tuple[list[int], list[BaseException], AckPipeline]:
        loop = asyncio.get_running_loop()
        acked: list[int] = []
        failures: list[BaseException] = []

        pipe = AckPipeline(acked.extend, on_failure=failures.append)
        bad, good = loop.create_future(), loop.create_future()
        await pipe.put([1], [bad], after=lambda: None)
        await pipe.put([2], [good], after=lambda: None)
        bad.set_exception(OSError("broker refused the record"))
        good.set_result(None)
        await pipe.drained()
        pipe.stop()
        return acked, failures, pipe

    acked, failures, pipe = run(scenario())
    assert acked == []
    assert [str(f) for f in failures] == ["broker refused the record"]
    with pytest.raises(RuntimeError, match="not acknowledged"):
        run(pipe.put([3], [], after=lambda: None))


def test_the_body_waits_when_depth_batches_are_in_flight() -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()

        pipe = AckPipeline(lambda records: None, on_failure=lambda exc: None, depth=1)
        held = loop.create_future()
        await pipe.put([1], [held], after=lambda: None)
        await asyncio.sleep(0)  # the first is taken off the queue, waiting for its send
        await pipe.put([2], [], after=lambda: None)  # fills the queue
        third = asyncio.ensure_future(pipe.put([3], [], after=lambda: None))
        await let_the_loop_run()
        blocked = not third.done()
        held.set_result(None)
        await asyncio.wait_for(third, 1)
        await pipe.drained()
        pipe.stop()
        return blocked

    assert run(scenario())
