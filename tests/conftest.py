"""Shared fixtures: one Kafka broker per test session, unique names per test.

The broker is, in order: an external cluster named by ``ASSETWATCH_TEST_BROKER``; Apache Kafka
through testcontainers when a Docker engine answers; the embedded broker otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("ASSETWATCH_TEST_BROKER")
    if external:
        from agents.broker import wait_until_ready

        wait_until_ready(external, 30)
        yield external
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from agents.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def unique() -> str:
    """A short unique name for this test's topics and consumer group."""
    return "t" + uuid.uuid4().hex[:10]
