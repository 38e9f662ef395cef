"""The chaos suite's short forms: kill -9 of a worker under load three times; the hook
endpoints down across a worker restart; the broker crashed mid-stream (Apache Kafka, and the
embedded broker on S3 storage). Nothing lost, nothing duplicated.

The full runs (``python -m benchmarks.chaos --scenario kills|hooks-down|broker-restart``) are
on demand; their figures are in docs/reliability.md. The expected output comes from the pure
engine's uninterrupted scoring of the same readings, not from a worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.apache_kafka import kafka_jars
from agents.connection import KafkaConnection
from benchmarks.chaos import run_chaos
from benchmarks.chaos_broker import (
    BrokerRestartResult,
    apache_kafka_node,
    embedded_s3_node,
    run_broker_restart,
)
from benchmarks.chaos_hooks import run_hooks_down
from benchmarks.local_s3 import gofakes3_binary

pytestmark = pytest.mark.integration


def test_three_kills_under_load_lose_nothing_and_duplicate_nothing(
        kafka: KafkaConnection, tmp_path: Path) -> None:
    result = run_chaos(kafka, tmp_path, kills=3, assets=12, points=300, seed=7, log=lambda _: None)
    assert result.expected_anomalies > 20 and result.expected_alerts > 3  # faults were there
    assert (result.anomalies_lost, result.anomalies_spurious, result.conflicting_keys) == (
        0, 0, 0), f"lost {result.lost_keys}, spurious {result.spurious_keys}"
    assert (result.alerts_lost, result.alerts_spurious, result.alerts_wrong) == (0, 0, 0)
    assert result.late_records == 0


def test_hook_endpoints_down_across_a_worker_restart_get_every_alert_state_exactly_once(
        kafka: KafkaConnection, tmp_path: Path) -> None:
    result = run_hooks_down(kafka, tmp_path, down_s=15, assets=8, points=250, seed=3,
                            log=lambda _: None)
    assert result.expected >= 4  # alerts were raised and notified
    assert (result.webhook_lost, result.webhook_spurious, result.webhook_duplicated) == (0, 0, 0)
    assert (result.email_lost, result.email_spurious, result.email_duplicated) == (0, 0, 0)


def _assert_clean(run: BrokerRestartResult) -> None:
    result = run.counts
    assert result.expected_anomalies > 10 and result.expected_alerts > 2
    assert (result.anomalies_lost, result.anomalies_spurious, result.conflicting_keys) == (0, 0, 0)
    assert (result.alerts_lost, result.alerts_spurious, result.alerts_wrong) == (0, 0, 0)
    assert result.late_records == 0


def test_a_broker_crash_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """On an Apache Kafka node of its own (the jars CI installs), whatever the tier: the test
    kills the broker itself."""
    jars = kafka_jars()
    assert jars is not None, "Apache Kafka's jars: .ci/run installs them (agents/apache_kafka.py)"
    _assert_clean(run_broker_restart(apache_kafka_node(jars), tmp_path, restarts=1, down_s=3,
                                     assets=8, points=300, seed=5, log=lambda _: None))


def test_an_embedded_broker_crash_on_s3_storage_loses_nothing_and_duplicates_nothing(
        tmp_path: Path) -> None:
    """The embedded broker on ``s3://`` storage in a local S3 server (gofakes3, which .ci/run
    builds with Go); where Go is missing it skips and the Apache Kafka test above still runs."""
    gofakes3 = gofakes3_binary()
    if gofakes3 is None:
        pytest.skip("gofakes3 is not built and Go is missing (python -m benchmarks.local_s3 resolve)")
    _assert_clean(run_broker_restart(embedded_s3_node(gofakes3), tmp_path, restarts=1, down_s=3,
                                     assets=8, points=300, seed=5, log=lambda _: None))
