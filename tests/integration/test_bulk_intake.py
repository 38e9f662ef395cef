"""The scoring loop's bulk intake on a real broker (agents/bulk_intake.py): what Faust's
per-record path did for the records it now lifts out of each fetch still happens."""

from __future__ import annotations

from pathlib import Path

from agents.connection import KafkaConnection
from agents.kafka_io import make_producer
from streams.codec import encode_telemetry
from streams.simulate import generate_fleet
from tests.integration.harness import Pipeline, finalised, wait_committed, wait_for

START_MS = 1_767_225_600_000
ASSETS = ["pump-a", "pump-b", "pump-c"]


def test_a_transactional_feeds_commit_markers_do_not_hold_the_offsets_back(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    """Each transaction a producer commits (Kafka Connect, Flink, any exactly-once producer)
    leaves a marker that takes an offset and is never delivered: the records lifted out of the
    fetches around them are all scored, and the group's commit moves past every marker to the
    last record."""
    p = Pipeline.create(kafka, unique, tmp_path, partitions=1)
    readings = generate_fleet(ASSETS, 12, START_MS, 1_000, seed=3).readings
    producer = make_producer(kafka, **{"transactional.id": f"{unique}-feed",
                                       "batch.num.messages": 1})
    producer.init_transactions(10)
    per_transaction = 6
    for i in range(0, len(readings), per_transaction):
        producer.begin_transaction()
        for r in readings[i:i + per_transaction]:
            producer.produce(p.settings.topics.telemetry, key=r.asset_id.encode(),
                             value=encode_telemetry([r]))
        producer.commit_transaction(10)
    transactions = -(-len(readings) // per_transaction)
    # each transaction's records, then its marker: the offset after the last record
    after_last_record = len(readings) + transactions - 1
    with p.worker() as w:
        w.wait_ready(60)
        wait_for(finalised(w, len(readings)), 60, "every point finalised")
        wait_committed(p, {0: after_last_record}, 60,
                       f"the commit past {transactions - 1} markers, to {after_last_record}")
        status = w.status()
    assert status is not None and status["counts"]["received"] == len(readings)
