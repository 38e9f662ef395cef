"""The data-quality report: runs, timestamps, per-signal figures, the table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.quality import (
    QualityReport,
    SignalQuality,
    format_table,
    longest_run,
    signal_quality,
    timestamp_quality,
)

nan = math.nan


@pytest.mark.parametrize(
    ("values", "run"),
    [
        ([], 0),
        ([nan], 0),
        ([1.0], 1),
        ([1.0, 2.0, 3.0], 1),
        ([1.0, 1.0, 2.0, 2.0, 2.0], 3),
        ([5.0, 5.0, nan, 5.0, 5.0], 2),  # NaN breaks a run
        ([0.0] * 50, 50),
    ],
)
def test_longest_run(values: list[float], run: int) -> None:
    assert longest_run(np.array(values)) == run


@pytest.mark.parametrize(
    ("ts", "duplicates", "non_increasing"),
    [
        ([], 0, 0),
        ([0], 0, 0),
        ([0, 1, 2], 0, 0),
        ([0, 1, 1, 2], 1, 1),
        ([0, 2, 1, 3], 0, 1),
        ([5, 5, 5], 2, 2),
        ([3, 2, 1, 0], 0, 3),
    ],
)
def test_timestamp_quality(ts: list[int], duplicates: int, non_increasing: int) -> None:
    assert timestamp_quality(np.array(ts, dtype=np.int64)) == (duplicates, non_increasing)


def test_constant_signal_is_flagged_constant_and_stuck() -> None:
    q = signal_quality("p", np.full(30, 2.5), missing=0, filled=0, slots=30, stuck_run=10)
    assert q.constant and q.stuck and q.longest_run == 30
    assert (q.minimum, q.maximum, q.mean) == (2.5, 2.5, 2.5)


def test_shares_and_statistics() -> None:
    q = signal_quality("t", np.array([1.0, nan, 3.0, nan]), missing=2, filled=1, slots=4, stuck_run=10)
    assert (q.missing_share, q.filled_share) == (0.5, 0.25)
    assert (q.minimum, q.maximum, q.mean) == (1.0, 3.0, 2.0)
    assert not q.constant and not q.stuck


def test_a_signal_without_values_has_no_statistics() -> None:
    q = signal_quality("t", np.array([nan, nan]), missing=2, filled=0, slots=2, stuck_run=10)
    assert q.minimum is None and q.mean is None and q.longest_run == 0 and not q.constant


def report() -> QualityReport:
    a = signal_quality("a", np.array([1.0, 2.0, 3.0]), 0, 0, 3, 10)
    b = signal_quality("longer_name", np.full(12, 7.0), 6, 6, 12, 10)
    return QualityReport(rows=12, duplicate_timestamps=1, non_increasing_timestamps=2,
                         interval_ms=1000, slots=12, dropped=1, signals=(a, b))


def test_round_trip() -> None:
    assert QualityReport.from_dict(report().to_dict()) == report()


def test_warnings_name_every_problem() -> None:
    text = "\n".join(report().warnings())
    for needle in ("1 duplicate", "2 non-increasing", "1 incomplete", "longer_name: constant",
                   "longer_name: 50% of the slots missing"):
        assert needle in text
    quiet = QualityReport(3, 0, 0, 1000, 3, 0, (SignalQuality("a", 3, 0, 0, 1, False, False, 1, 3, 2),))
    assert quiet.warnings() == []


def test_table_is_aligned() -> None:
    lines = format_table(report()).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("signal       missing")
    # the numeric columns end at the same place on every line
    assert len({line.index("longest run") for line in lines[:1]}) == 1
    ends = {len(line.split("  constant")[0].rstrip()) for line in lines[1:]}
    assert lines[2].endswith("constant,stuck") and len(ends) == 1
