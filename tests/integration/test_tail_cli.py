"""``assetwatch tail`` on the session broker: filters, columns, JSON lines, colour, stopping."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from agents.broker import TopicSpec, ensure_topics
from agents.connection import KafkaConnection
from agents.kafka_io import make_producer
from agents.settings import TopicNames
from agents.tail_cli import tail
from streams.alert_codec import encode_alert
from streams.alerts import Alert
from streams.codec import encode_anomaly, encode_dead_letter
from streams.records import Anomaly, Rejection

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000
ANOMALIES = [
    Anomaly("inf-a", "pump-1", T0, "m", 1, 7.5, 0.95, 70, 0.3, {"vib": 0.9, "temp": 0.1}),
    Anomaly("inf-b", "pump-2", T0 + 1_000, "m", 1, 3.1, 0.5, 70, 0.3, {"temp": 1.0}),
    Anomaly("inf-a", "pump-3", T0 + 2_000, "m", 1, 4.2, 0.7, 70, 0.3, {"current": 0.6, "vib": 0.4},
            filled=True),
]
ALERTS = [
    Alert("a1", "high", "inf-a", ("pump-1",), T0, T0, 1, 0.95, ("vib",), "open", True),
    Alert("a2", "high", "inf-b", ("pump-2", "pump-4"), T0, T0 + 9_000, 3, 0.8, ("temp",),
          "resolved", True),
]


@pytest.fixture
def deployment(kafka: KafkaConnection, unique: str) -> TopicNames:
    """Anomalies (with one unreadable record among them), alerts and a dead letter on the broker."""
    topics = TopicNames(unique)
    alerts_topic = f"{unique}.alerts"
    ensure_topics(kafka, [TopicSpec(topics.anomalies, 2), TopicSpec(alerts_topic, 2),
                                    TopicSpec(topics.dead_letter, 2)])
    producer = make_producer(kafka)
    for a in ANOMALIES[:2]:
        producer.produce(topics.anomalies, key=a.key.encode(), value=encode_anomaly(a))
    producer.produce(topics.anomalies, key=b"junk", value=b"not json")
    producer.produce(topics.anomalies, key=ANOMALIES[2].key.encode(), value=encode_anomaly(ANOMALIES[2]))
    for al in ALERTS:
        producer.produce(alerts_topic, key=al.key.encode(), value=encode_alert(al))
    producer.produce(topics.dead_letter, key=b"pump-9", value=encode_dead_letter(
        Rejection("schema: data.signals.temp must be number", b'{"x":1}', "pump-9"),
        source_topic=topics.telemetry, partition=1, offset=42, key=b"pump-9", received_at_ms=T0))
    assert producer.flush(10) == 0
    return topics


def run(bootstrap: str, topics: TopicNames, *args: str, color: bool = False) -> list[str]:
    result = CliRunner().invoke(
        tail, [*args, "--broker", bootstrap, "--topic-prefix", topics.prefix, "--from-beginning",
               "--timeout", "30"], color=color)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_anomalies_of_one_inference_print_in_aligned_columns(
    kafka_bootstrap: str, deployment: TopicNames
) -> None:
    header, *rows = run(kafka_bootstrap, deployment, "anomalies", "--inference", "inf-a", "--max", "2")
    assert header.split()[:3] == ["time", "inference", "asset"]
    assert len(rows) == 2
    assert {r.split()[2] for r in rows} == {"pump-1", "pump-3"}
    assert all(r.split()[1] == "inf-a" for r in rows)
    # the severity column starts at the same place on every row (partitions may interleave)
    starts = {r.index(sev) for r, sev in zip(sorted(rows), ["0.95", "0.70"], strict=True)}
    assert len(starts) == 1
    assert any("filled" in r and "current 60%" in r for r in rows)


def test_json_lines_are_the_records_as_published(kafka_bootstrap: str, deployment: TopicNames) -> None:
    lines = run(kafka_bootstrap, deployment, "anomalies", "--json", "--max", "3")
    assert sorted(orjson.loads(line)["asset_id"] for line in lines) == ["pump-1", "pump-2", "pump-3"]
    assert {line.encode() for line in lines} == {encode_anomaly(a) for a in ANOMALIES}


def test_alerts_of_one_asset_show_state_and_assets(kafka_bootstrap: str, deployment: TopicNames) -> None:
    _, *rows = run(kafka_bootstrap, deployment, "alerts", "--asset", "pump-4", "--max", "1")
    assert len(rows) == 1
    fields = rows[0].split()
    assert fields[1:5] == ["resolved", "inf-b", "high", "pump-2,pump-4"]
    assert fields[-1] == "a2"


def test_dead_letters_show_where_from_and_why_in_colour(
    kafka_bootstrap: str, deployment: TopicNames
) -> None:
    _, row = run(kafka_bootstrap, deployment, "dead-letter", "--max", "1", color=True)
    assert "\x1b[31m" in row  # the reason in red on a terminal
    assert f"{deployment.telemetry}[1]@42" in row
    assert row.endswith("schema: data.signals.temp must be number\x1b[0m")


def test_a_timeout_ends_a_tail_that_finds_nothing(kafka_bootstrap: str, deployment: TopicNames) -> None:
    result = CliRunner().invoke(tail, ["anomalies", "--broker", kafka_bootstrap, "--topic-prefix",
                                       deployment.prefix, "--from-beginning", "--inference", "nobody",
                                       "--timeout", "1.5"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == []
    assert "unreadable record" in result.stderr


def test_tail_needs_a_broker_and_a_topic(kafka_bootstrap: str, unique: str) -> None:
    no_broker = CliRunner(env={"ASSETWATCH_BROKER": ""}).invoke(tail, ["anomalies"])
    assert no_broker.exit_code == 2 and "--broker" in no_broker.output
    missing = CliRunner().invoke(tail, ["alerts", "--broker", kafka_bootstrap, "--topic-prefix", unique])
    assert missing.exit_code != 0 and f"{unique}.alerts does not exist" in str(missing.exception)
