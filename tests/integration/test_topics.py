"""The topics the project creates on a real cluster: durability settings, unfit existing topics,
compaction, and a worker that joins with Apache Kafka's stock group settings."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from agents.broker import BrokerError, TopicSpec, ensure_topics
from agents.compacted import CompactedTopic
from agents.connection import KafkaConnection
from agents.settings import Settings, TopicNames
from agents.topics import registry_topic, topic_specs, with_durability
from tests.conftest import BrokerTier
from tests.integration.harness import Pipeline, wait_for
from tests.integration.test_pipeline import fleet

pytestmark = pytest.mark.integration


def topic_config(kafka: KafkaConnection, topic: str) -> dict[str, str]:
    admin = AdminClient(kafka.client_config())
    (fut,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    return {k: v.value for k, v in fut.result(timeout=10).items() if v.value is not None}


def test_an_existing_topic_that_is_not_compacted_is_refused_with_the_fix(
    kafka: KafkaConnection, unique: str
) -> None:
    settings = Settings(topics=TopicNames(unique), partitions=2)
    admin = AdminClient(kafka.client_config())
    futures = admin.create_topics(
        [NewTopic(settings.topics.anomalies, 2, config={"cleanup.policy": "delete"})])
    for fut in futures.values():
        fut.result(timeout=15)
    with pytest.raises(BrokerError) as refused:
        ensure_topics(kafka, topic_specs(settings))
    message = str(refused.value)
    assert f"topic {settings.topics.anomalies} exists with cleanup.policy=delete, expected compact" in message
    assert "--add-config cleanup.policy=compact" in message


def test_an_existing_topic_with_other_partitions_is_refused_with_the_fix(
    kafka: KafkaConnection, unique: str
) -> None:
    ensure_topics(kafka, [TopicSpec(f"{unique}.telemetry", 3)])
    with pytest.raises(BrokerError, match=r"exists with 3 partitions, expected 2: .*--partitions 3"):
        ensure_topics(kafka, topic_specs(Settings(topics=TopicNames(unique), partitions=2)))


def test_durability_settings_reach_every_topic_the_worker_uses_faust_changelogs_included(
    kafka: KafkaConnection, broker_tier: BrokerTier, unique: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSETWATCH_MIN_INSYNC_REPLICAS", "1")
    monkeypatch.setenv("ASSETWATCH_REPLICATION_FACTOR", "1")
    p = Pipeline.create(kafka, unique, tmp_path, partitions=2)
    with p.worker() as w:
        w.wait_ready(90)
    admin = AdminClient(kafka.client_config())
    ours = sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(unique))
    changelogs = [t for t in ours if t.endswith("-changelog")]
    assert f"{unique}-asset-state-changelog" in changelogs
    assert f"{unique}-__assignor-__leader" in ours
    settings = replace(p.settings, min_insync_replicas=1, replication_factor=1)
    if broker_tier.apache is not None or "testcontainers" in broker_tier.name:
        # Apache Kafka lists every topic's configuration; the embedded broker only some
        for topic in changelogs:
            config = topic_config(kafka, topic)
            assert config["cleanup.policy"] == "compact", topic
            assert config["min.insync.replicas"] == "1", topic
        assert topic_config(kafka, settings.topics.dead_letter)["max.message.bytes"] == str(4 * 1024 * 1024)
    # a replication factor the cluster cannot give is one clear error, not Faust's default of 1
    too_many = with_durability(replace(settings, replication_factor=99), [TopicSpec(f"{unique}.x", 1)])
    if broker_tier.apache is not None:
        with pytest.raises(BrokerError, match=r"could not create topic .*[Rr]eplication factor"):
            ensure_topics(kafka, too_many)


def count_records(kafka: KafkaConnection, topic: str) -> int:
    """Every record stored in partition 0 of ``topic``, read from its beginning to its end."""
    consumer = Consumer(kafka.client_config(**{"group.id": f"count-{time.monotonic_ns()}",
                                               "enable.auto.commit": False,
                                               "auto.offset.reset": "earliest"}))
    try:
        tp = TopicPartition(topic, 0, 0)
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        consumer.assign([tp])
        seen = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=500, timeout=0.2)
            seen += sum(1 for m in msgs if m.error() is None)
            (pos,) = consumer.position([TopicPartition(topic, 0)])
            if pos.offset >= high:
                return seen
        raise AssertionError(f"{topic} not read to its end")
    finally:
        consumer.close()


def test_compacted_state_topics_really_shrink_on_apache_kafka(
    broker_tier: BrokerTier, kafka: KafkaConnection, unique: str
) -> None:
    if broker_tier.apache is None and "testcontainers" not in broker_tier.name:
        pytest.skip("the embedded broker never compacts (docs/embedded-broker.md); readers "
                    "replay every record, which tests/integration/test_registry.py checks there")
    settings = Settings(topics=TopicNames(unique))
    topic = registry_topic(settings)
    registry: CompactedTopic[bytes] = CompactedTopic(kafka, settings, topic, lambda _k, v: v,
                                                     purpose="compaction-test")
    registry.ensure_topic()
    assert topic_config(kafka, topic)["cleanup.policy"] == "compact"
    # small segments and an eager cleaner, so the test needs seconds and not a week
    admin = AdminClient(kafka.client_config())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.ms", "100", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("delete.retention.ms", "100", incremental_operation=AlterConfigOpType.SET),
    ])
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(timeout=10)
    keys, versions = 5, 40
    for version in range(versions):
        for k in range(keys):
            registry.send(f"model-{k}", f"v{version}".encode(), "test write")
        time.sleep(0.01)  # paces the writes across segments (segment.ms=100), not a sync wait
    time.sleep(0.15)  # the last segment must be older than segment.ms to roll, ditto
    registry.send("roll", b"x", "test write")
    written = keys * versions + 1
    assert count_records(kafka, topic) <= written
    wait_for(lambda: count_records(kafka, topic) < written // 2, 120, "the log cleaner to compact")
    last = registry.read()
    registry.close()
    assert last == {**{f"model-{k}": f"v{versions - 1}".encode() for k in range(keys)}, "roll": b"x"}


def test_a_worker_with_the_clusters_stock_group_settings_joins_and_scores(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    stock = KafkaConnection(kafka.bootstrap, embedded=kafka.embedded)  # no test group timeouts
    p = Pipeline.create(stock, unique, tmp_path)
    readings = fleet().readings
    expected = p.expected_keys(readings)
    assert sorted(set(p.scored_keys(readings, expected))) == sorted(expected)


def test_a_session_timeout_the_cluster_refuses_is_one_clear_line(
    broker_tier: BrokerTier, kafka_bootstrap: str, tmp_path: Path
) -> None:
    if broker_tier.apache is None and "testcontainers" not in broker_tier.name:
        pytest.skip("the embedded broker lists no broker configuration to check against")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "-X", "session.timeout.ms=2000", "worker",
         "--broker", kafka_bootstrap, "--models", str(tmp_path), "--topic-prefix", "t-refused",
         "--app-id", "t-refused", "--partitions", "1"],
        capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 60
    errors = [line for line in done.stderr.splitlines() if line.startswith("assetwatch: error:")]
    assert errors == ["assetwatch: error: session.timeout.ms 2000 is below the cluster's "
                      "group.min.session.timeout.ms (6000): raise it with -X session.timeout.ms=…"]
    assert "Traceback" not in done.stderr
