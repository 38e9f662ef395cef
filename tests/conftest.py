"""Shared fixtures: one Kafka broker per test session, unique names per test.

The broker tier is, in order (docs/apache-kafka.md):

1. an external cluster named by ``ASSETWATCH_TEST_BROKER`` (client properties, e.g. SASL or
   TLS, from the usual ``ASSETWATCH_KAFKA_*`` variables);
2. Apache Kafka through testcontainers when a Docker engine answers;
3. Apache Kafka (KRaft) from Maven Central's jars when Java and the jars (or Maven, to
   resolve them) are there — with a SASL/SCRAM and a TLS listener besides the plain one;
4. the embedded broker (Tansu) otherwise.

``ASSETWATCH_TEST_TIER=embedded|apache-kafka`` forces one (CI runs the suite on both).
The session prints which broker it used.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agents.connection import KafkaConnection, properties_from_env

#: consumer-group timeouts for test workers on Apache Kafka: its stock minimum session (6 s),
#: so a killed worker's partitions move in seconds, not after Faust's default 60 s
TEST_GROUP_PROPERTIES = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
SCRAM_USER, SCRAM_PASSWORD = "assetwatch-test", "scram-" + uuid.uuid4().hex


@dataclass
class BrokerTier:
    """The session's broker: its name, how tests reach it, and (on the jar tier) the broker
    itself with its secured listeners."""

    name: str
    kafka: KafkaConnection
    apache: object | None = None  # agents.apache_kafka.ApacheKafka on the jar tier
    tls: dict[str, Path] = field(default_factory=dict)


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def broker_tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerTier]:
    from agents.broker import EmbeddedBroker, wait_until_ready

    forced = os.environ.get("ASSETWATCH_TEST_TIER", "auto")
    if forced not in ("auto", "embedded", "apache-kafka"):
        raise pytest.UsageError(f"ASSETWATCH_TEST_TIER={forced}: use auto, embedded or apache-kafka")
    external = os.environ.get("ASSETWATCH_TEST_BROKER")
    if external and forced == "auto":
        kafka = KafkaConnection(external, properties_from_env(os.environ))
        cluster = wait_until_ready(kafka, 30)
        yield _announce(BrokerTier(f"external cluster {external} ({cluster})", kafka))
        return
    if forced == "auto" and _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            kafka = KafkaConnection(container.get_bootstrap_server(), dict(TEST_GROUP_PROPERTIES))
            yield _announce(BrokerTier("Apache Kafka (testcontainers)", kafka))
        return
    if forced in ("auto", "apache-kafka"):
        from agents.apache_kafka import ApacheKafka, ServerTls, java_command, kafka_jars, kafka_version
        from agents.broker import BrokerError

        try:
            jars = kafka_jars() if java_command() else None
        except BrokerError as exc:  # Maven could not fetch them: say so, and fall back
            if forced == "apache-kafka":
                raise
            TIERS_USED.append(f"(not Apache Kafka: {str(exc).splitlines()[0]})")
            jars = None
        if jars is None and forced == "apache-kafka":
            raise pytest.UsageError("ASSETWATCH_TEST_TIER=apache-kafka needs Java and Maven "
                                    "(or the jars in ASSETWATCH_KAFKA_JARS)")
        if jars is not None:
            from tests.tls import make_pki

            tls = make_pki(tmp_path_factory.mktemp("pki"))
            server = ApacheKafka(jars, scram_users={SCRAM_USER: SCRAM_PASSWORD},
                                 tls=ServerTls(tls["server_key_and_chain"], tls["ca"]))
            with server:
                kafka = server.connection(properties=TEST_GROUP_PROPERTIES)
                yield _announce(BrokerTier(f"Apache Kafka {kafka_version()} (jars, KRaft)", kafka,
                                           server, tls))
            return
    with EmbeddedBroker() as broker:
        yield _announce(BrokerTier("embedded broker (Tansu)", broker.connection))


TIERS_USED: list[str] = []


def _announce(tier: BrokerTier) -> BrokerTier:
    TIERS_USED.append(f"{tier.name} at {tier.kafka.bootstrap}")
    return tier


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which broker the broker tests ran on (CI runs the suite on two)."""
    for used in TIERS_USED:
        terminalreporter.write_line(f"assetwatch broker tests ran on: {used}")


@pytest.fixture(scope="session")
def kafka(broker_tier: BrokerTier) -> KafkaConnection:
    """The session's cluster as the project's clients take it (address and properties)."""
    return broker_tier.kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(broker_tier: BrokerTier) -> str:
    """The session's bootstrap address, for ``--broker`` on the command line."""
    return broker_tier.kafka.bootstrap


@pytest.fixture
def unique() -> str:
    """A short unique name for this test's topics and consumer group."""
    return "t" + uuid.uuid4().hex[:10]
