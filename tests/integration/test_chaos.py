"""The chaos suite's short form: kill -9 of a worker under load, three times, nothing lost.

The full run (``python -m benchmarks.chaos --kills 20``) is on demand; its figures are in
docs/reliability.md. The expected output comes from the pure engine's uninterrupted scoring
of the same readings, not from a worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.connection import KafkaConnection
from benchmarks.chaos import run_chaos

pytestmark = pytest.mark.integration


def test_three_kills_under_load_lose_nothing_and_duplicate_nothing(
        kafka: KafkaConnection, tmp_path: Path) -> None:
    result = run_chaos(kafka, tmp_path, kills=3, assets=12, points=300, seed=7, log=lambda _: None)
    assert result.expected_anomalies > 20 and result.expected_alerts > 3  # faults were there
    assert (result.anomalies_lost, result.anomalies_spurious, result.conflicting_keys) == (0, 0, 0)
    assert (result.alerts_lost, result.alerts_spurious, result.alerts_wrong) == (0, 0, 0)
    assert result.late_records == 0
