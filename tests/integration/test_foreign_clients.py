"""A client that is not assetwatch — bare librdkafka through confluent-kafka, the stdlib's json,
no project code to produce or consume — feeds a running worker and reads its anomalies, on the
session broker (docs/embedded-broker.md, "Your own clients on the embedded broker")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import confluent_kafka
import pytest

from agents.connection import KafkaConnection
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import INTERVAL_MS, START_MS, Pipeline, wait_for

pytestmark = pytest.mark.integration

#: client properties a plain client needs on a secured test cluster (none on the plain tiers)
SECURITY = ("security.", "sasl.", "ssl.")


def test_a_plain_librdkafka_client_produces_telemetry_and_reads_the_anomalies(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    p = Pipeline.create(kafka, unique, tmp_path, partitions=2)
    readings = generate_fleet(["pump-7", "pump-8"], 200, START_MS, INTERVAL_MS, seed=3,
                              faults=[Fault("pump-7", "spike", 120, 3)]).readings
    expected = p.expected_keys(readings)
    assert expected, "the spike makes anomalies"
    base = {"bootstrap.servers": kafka.bootstrap,
            **{k: v for k, v in kafka.properties.items() if k.startswith(SECURITY)}}
    # what a user writes by hand: JSON with ISO timestamps, keyed by asset id
    producer = confluent_kafka.Producer(base)
    consumer = confluent_kafka.Consumer({
        **base, "group.id": f"{unique}-reader", "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,  # the embedded broker's join waits half of it
    })
    consumer.subscribe([p.settings.topics.anomalies])
    seen: dict[str, dict[str, object]] = {}

    def read() -> bool:
        for m in consumer.consume(num_messages=500, timeout=0.2):
            if m.error() is None and m.value() is not None:
                seen[m.key().decode()] = json.loads(m.value())
        return set(seen) >= expected

    try:
        with p.worker() as w:
            w.wait_ready(60)
            for r in readings:
                iso = datetime.fromtimestamp(r.ts_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
                producer.produce(p.settings.topics.telemetry, key=r.asset_id.encode(),
                                 value=json.dumps({"asset_id": r.asset_id, "ts": iso,
                                                   "signals": r.signals}).encode())
                producer.poll(0)
            assert producer.flush(30) == 0
            wait_for(read, 60, f"{len(expected)} anomalies read by a plain consumer")
    finally:
        consumer.close()
    assert set(seen) == expected
    spike = seen[f"inf/pump-7/{START_MS + 120 * INTERVAL_MS}"]
    assert spike["asset_id"] == "pump-7" and spike["ts"] == START_MS + 120 * INTERVAL_MS
