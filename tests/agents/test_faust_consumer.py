"""The worker consumer's fetch wait (agents/faust_consumer.py, docs/configuration.md): what the
embedded broker holds a fetch for, where Faust fixes 1,500 ms."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.app import EMBEDDED_FETCH_MAX_WAIT_MS, create_app
from agents.connection import KafkaConnection
from agents.settings import Settings


def _worker_consumer_wait(settings: Settings, kafka: KafkaConnection) -> Any:
    """The fetch wait of the aiokafka consumer a worker of these settings builds."""
    app = create_app(settings, kafka)

    async def build() -> Any:
        thread = app.consumer._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms

    return asyncio.run(build())


@pytest.mark.parametrize(("embedded", "configured", "expected"), [
    (True, None, EMBEDDED_FETCH_MAX_WAIT_MS),  # the embedded broker holds fetches: short
    (False, None, 1500),                       # Apache Kafka answers when records arrive: Faust's
    (False, 250, 250),                         # the operator's setting wins on either
    (True, 40, 40),
])
def test_the_worker_consumer_fetch_wait_follows_the_broker_unless_set(
        embedded: bool, configured: int | None, expected: int) -> None:
    settings = Settings.from_env({}, app_id="fetch-wait-test", fetch_max_wait_ms=configured)
    kafka = KafkaConnection("127.0.0.1:9", embedded=embedded)
    assert _worker_consumer_wait(settings, kafka) == expected


def test_the_fetch_wait_comes_from_the_environment_and_must_be_positive() -> None:
    assert Settings.from_env({"ASSETWATCH_FETCH_MAX_WAIT_MS": "75"}).fetch_max_wait_ms == 75
    with pytest.raises(ValueError, match="FETCH_MAX_WAIT_MS"):
        Settings.from_env({"ASSETWATCH_FETCH_MAX_WAIT_MS": "0"})


def test_the_worker_runs_on_uvloop_unless_told_asyncio() -> None:
    from agents.worker import use_event_loop

    assert Settings.from_env({}).event_loop == "uvloop"
    assert Settings.from_env({"ASSETWATCH_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ValueError, match="must be uvloop or asyncio"):
        Settings.from_env({"ASSETWATCH_EVENT_LOOP": "tokio"})
    try:
        use_event_loop("uvloop")
        assert type(asyncio.new_event_loop()).__module__.startswith("uvloop")
        use_event_loop("asyncio")
        assert type(asyncio.new_event_loop()).__module__.startswith("asyncio")
    finally:
        asyncio.set_event_loop_policy(None)
