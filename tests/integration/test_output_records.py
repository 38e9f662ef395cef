"""The output records as a downstream reader sees them on the broker (issue 17 item 10):
alert keys, folded updates, and Kafka timestamps in the event time of what a record describes."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.connection import KafkaConnection
from agents.kafka_io import topic_reader
from streams.alerts import AlertConfig
from streams.codec import loads
from streams.records import Reading
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import INTERVAL_MS, START_MS, Pipeline, finalised, wait_for

pytestmark = pytest.mark.integration

#: One pump with a long drift: a fault that makes one alert group of many anomalies.
DRIFT = Fault("pump-1", "drift", 150, 250)


class Records:
    """Every record of one topic so far, with its key and Kafka timestamp (ms)."""

    def __init__(self, kafka: KafkaConnection, topic: str, partitions: int) -> None:
        self.consumer = topic_reader(kafka, topic, partitions)
        self.seen: list[tuple[str, dict[str, Any], int]] = []

    def read(self) -> list[tuple[str, dict[str, Any], int]]:
        for m in self.consumer.consume(num_messages=1000, timeout=0.3):
            if m.error() is None and m.value() is not None:
                self.seen.append((m.key().decode(), loads(m.value()), m.timestamp()[1]))
        return list(self.seen)

    def close(self) -> None:
        self.consumer.close()


def _pipeline(kafka: KafkaConnection, unique: str, tmp_path: Path) -> Pipeline:
    p = Pipeline.create(kafka, unique, tmp_path)
    p.inference = replace(p.inference, alerts=(AlertConfig("drift", correlation_points=10),))
    (tmp_path / "inferences.json").write_bytes(orjson.dumps([p.inference.to_dict()]))
    return p


def test_a_long_fault_is_one_alert_with_its_updates_folded_keyed_and_stamped_by_event_time(
    kafka: KafkaConnection, unique: str, tmp_path: Path,
) -> None:
    p = _pipeline(kafka, unique, tmp_path)
    readings = generate_fleet(["pump-1"], 600, START_MS, INTERVAL_MS, seed=4, faults=[DRIFT]).readings
    expected = p.expected_keys(readings)
    assert len(expected) > 50, "the drift is a long run of anomalies"
    anomalies = Records(kafka, p.settings.topics.anomalies, p.settings.partitions)
    alerts = Records(kafka, p.settings.topics.alerts, p.settings.partitions)
    try:
        with p.worker() as w:
            w.wait_ready(60)
            p.send(readings)
            wait_for(finalised(w, len(readings)), 60, "every reading finalised")
            published = wait_for(lambda: len({k for k, _, _ in r}) >= len(expected) and r
                                 if (r := anomalies.read()) else None, 30, "every anomaly")
            resolved = wait_for(lambda: [a for a in alerts.read() if a[1]["state"] == "resolved"],
                                30, "the resolution")
        records = alerts.read()
    finally:
        anomalies.close()
        alerts.close()

    # every anomaly is stamped with its own time, not the moment it was published
    assert {k for k, _, _ in published} == expected
    assert all(ts == a["ts"] for _, a, ts in published)
    # one incident: one alert id, the Kafka key of each of its records
    assert all(key == a["alert_id"] for key, a, _ in records)
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, a, _ in records:
        by_group[a["alert_id"]].append(a)
    drift_lo, drift_hi = DRIFT.ts_range(START_MS, INTERVAL_MS)
    drift = [g for g in by_group.values() if g[0]["first_ts"] < drift_hi and drift_lo <= g[-1]["last_ts"]]
    assert len(drift) == 1, by_group
    group = drift[0]
    final = group[-1]
    assert final["state"] == "resolved" and resolved
    n = final["anomaly_count"]
    assert n > 50
    # updates folded: at most one per doubling of the count and per tenth of severity, not one
    # per anomaly (it was n - 1)
    updated = [a for a in group if a["state"] == "updated"]
    assert len(updated) <= math.log2(n) + 10, [(a["anomaly_count"], a["max_severity"]) for a in updated]
    counts = [a["anomaly_count"] for a in group]
    assert counts == sorted(counts) and counts[0] == 1
    # an alert record is stamped with its group's latest anomaly
    assert all(ts == a["last_ts"] for _, a, ts in records)


def test_a_late_point_is_published_stamped_with_its_own_time(
    kafka: KafkaConnection, unique: str, tmp_path: Path,
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = generate_fleet(["pump-1"], 120, START_MS, INTERVAL_MS, seed=2).readings
    missing = readings[60]  # never sent in time: its slot is filled, then it comes late
    late = Records(kafka, p.settings.topics.late, p.settings.partitions)
    try:
        with p.worker() as w:
            w.wait_ready(60)
            p.send([r for r in readings if r is not missing])
            wait_for(finalised(w, len(readings) - 1), 60, "the readings sent finalised")
            p.send([Reading(missing.asset_id, missing.ts_ms, dict(missing.signals))])
            records = wait_for(late.read, 30, "the late record")
    finally:
        late.close()
    [(key, record, ts)] = records
    assert key == f"inf/pump-1/{missing.ts_ms}"
    assert record["ts"] == missing.ts_ms and ts == missing.ts_ms
