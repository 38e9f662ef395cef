"""A worker killed with -9 whose group lost its commits: everything it took is read again.
Nothing of it is late (it was scored) and no anomaly is published twice (SPEC §5.3)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agents.connection import KafkaConnection
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import (
    INTERVAL_MS,
    START_MS,
    Pipeline,
    commit_offsets,
    finalised,
    wait_for,
)

pytestmark = pytest.mark.integration

ASSETS = ["pump-a", "pump-b", "pump-c"]


def test_after_kill_9_and_lost_commits_nothing_is_late_and_no_anomaly_is_published_twice(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = generate_fleet(ASSETS, 120, START_MS, INTERVAL_MS, seed=5,
                              faults=[Fault("pump-b", "spike", 40, 2), Fault("pump-c", "spike", 90, 1)]
                              ).readings
    expected = p.expected_keys(readings)
    head = [r for r in readings if r.ts_ms < START_MS + 70 * INTERVAL_MS]
    tail = readings[len(head):]
    head_keys = {k for k in expected if int(k.rsplit("/", 1)[1]) < START_MS + 69 * INTERVAL_MS}
    assert head_keys and expected - head_keys, "anomalies on both sides of the crash"
    with p.worker("first.log") as first:
        first.wait_ready(60)
        p.send(head)
        wait_for(finalised(first, len(head) - len(ASSETS)), 60, "the head finalised")
        wait_for(lambda: head_keys <= set(p.anomaly_keys()), 30, "the head's anomalies published")
        first.kill()
    telemetry = p.settings.topics.telemetry
    commit_offsets(p.kafka, p.settings.app_id, telemetry,
                   dict.fromkeys(range(p.settings.partitions), 0))  # every commit lost
    with p.worker("second.log") as second:
        second.wait_ready(60)
        p.send(tail)
        # the tail scored; the head read again as far as the live stream re-delivers it (a
        # rebalance may seek past what the stored state holds: nothing is lost by that)
        status = wait_for(lambda: (st := second.status()) and
                          st["counts"].get("scored", 0) >= len(tail) and st, 120, "the tail scored")
        keys = p.wait_for_anomalies(expected, 60)
        late = p.read(p.settings.topics.late, timeout_s=1)
    assert status["counts"].get("duplicate", 0) > 0, "the head was read again"
    assert status["counts"].get("late", 0) == 0 and late == []
    assert set(keys) == expected
    twice = [k for k, n in Counter(keys).items() if n > 1]
    assert twice == [], f"published twice: {twice}"
