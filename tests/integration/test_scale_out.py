"""Scale-out is Kafka's: two workers in one group split the partitions (SPEC §5.3)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agents.connection import KafkaConnection
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import INTERVAL_MS, START_MS, Pipeline, wait_for

pytestmark = pytest.mark.integration

ASSETS = [f"pump-{i}" for i in range(8)]


def test_two_workers_split_the_partitions_and_publish_what_one_worker_would(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path, partitions=4)
    readings = generate_fleet(ASSETS, 120, START_MS, INTERVAL_MS, seed=8, faults=[
        Fault("pump-1", "spike", 60, 2), Fault("pump-6", "stuck", 50, 40)]).readings
    expected = p.expected_keys(readings)
    with p.worker("a.log") as a, p.worker("b.log") as b:
        split = wait_for(lambda: (sa := a.status()) and (sb := b.status())
                         and sa["ready"] and sb["ready"]
                         and sa["assigned_partitions"] and sb["assigned_partitions"]
                         and len(sa["assigned_partitions"]) + len(sb["assigned_partitions"]) == 4
                         and (sa["assigned_partitions"], sb["assigned_partitions"]),
                         60, "the two workers to share the four partitions")
        assert not set(split[0]) & set(split[1])
        p.send(readings)
        keys = p.wait_for_anomalies(expected, 60)
        counts = [w.status()["counts"] for w in (a, b)]  # type: ignore[index]
    assert sorted(keys) == sorted(expected)
    assert [k for k, n in Counter(keys).items() if n > 1] == []
    assert all(c.get("received", 0) > 0 for c in counts)  # both did part of the work
    assert sum(c.get("received", 0) for c in counts) == len(readings)
