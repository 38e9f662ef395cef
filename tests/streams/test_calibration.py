"""Calibration: severity in [0, 1], non-decreasing, rank-like; sensitivity for a target FAR."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.calibration import Calibrator, is_anomalous, sensitivity_for_far, threshold_for

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(train=st.lists(finite, min_size=1, max_size=200), a=finite, b=finite)
def test_severity_is_in_unit_interval_and_non_decreasing(
    train: list[float], a: float, b: float
) -> None:
    cal = Calibrator.fit(train)
    lo, hi = min(a, b), max(a, b)
    s_lo, s_hi = cal.severity(lo), cal.severity(hi)
    assert 0.0 <= s_lo <= s_hi <= 1.0


@settings(max_examples=50, deadline=None)
@given(
    train=st.lists(finite, min_size=1, max_size=100),
    scores=st.lists(finite, min_size=1, max_size=50),
    low=st.integers(1, 100),
    high=st.integers(1, 100),
)
def test_higher_sensitivity_flags_a_superset_of_scores(
    train: list[float], scores: list[float], low: int, high: int
) -> None:
    cal = Calibrator.fit(train)
    low, high = min(low, high), max(low, high)
    flagged = [
        (is_anomalous(cal.severity(s), low), is_anomalous(cal.severity(s), high)) for s in scores
    ]
    assert all(h for lo_flag, h in flagged if lo_flag)


@pytest.mark.parametrize(
    ("sensitivity", "tail"), [(90, 1e-1), (80, 1e-2), (70, 1e-3), (60, 1e-4)]
)
def test_sensitivity_flags_about_its_tail_of_training(sensitivity: int, tail: float) -> None:
    rng = np.random.default_rng(0)
    cal = Calibrator.fit(rng.exponential(size=20_000))
    fresh = rng.exponential(size=400_000)
    rate = np.mean([cal.severity(s) >= threshold_for(sensitivity) - 1e-12 for s in fresh])
    assert tail / 2 <= rate <= tail * 2


def test_nan_and_constant_scores() -> None:
    cal = Calibrator.fit([2.0] * 50 + [math.nan])
    assert cal.severity(math.nan) == 0.0
    assert cal.severity(2.0) == 0.0
    assert cal.severity(2.1) > 0.5  # any rise over a constant training score is rare
    with pytest.raises(ValueError, match="no finite scores"):
        Calibrator.fit([math.nan])


def test_does_not_saturate_above_training() -> None:
    cal = Calibrator.fit(np.random.default_rng(1).normal(size=1_000) ** 2)
    assert cal.severity(12.0) < cal.severity(16.0) < 1.0
    # far beyond 10 decades (where severity used to be clipped at 1): still ranked
    far = [cal.severity(s) for s in (100.0, 200.0, 400.0, 800.0)]
    assert far == sorted(far) and len(set(far)) == 4 and far[-1] < 1.0


def test_severity_is_linear_in_decades_up_to_nine_then_continuous_and_increasing() -> None:
    from streams.calibration import severity_of_decades
    assert [severity_of_decades(d) for d in (0.0, 3.0, 7.0, 9.0)] == [0.0, 0.3, 0.7, 0.9]
    eps = 1e-9
    assert abs(severity_of_decades(9.0 + eps) - severity_of_decades(9.0 - eps)) < 1e-9
    grid = np.linspace(0.0, 500.0, 5001)
    sev = np.array([severity_of_decades(float(d)) for d in grid])
    assert np.all(np.diff(sev) > 0) and sev[-1] < 1.0


def test_round_trip() -> None:
    cal = Calibrator.fit(np.random.default_rng(2).exponential(size=300))
    assert Calibrator.from_dict(orjson.loads(orjson.dumps(cal.to_dict()))) == cal


@pytest.mark.parametrize("target", [0.001, 0.01, 0.05, 0.2])
def test_sensitivity_for_far_meets_the_target_and_is_the_highest_that_does(target: float) -> None:
    rng = np.random.default_rng(3)
    cal = Calibrator.fit(rng.exponential(size=2_000))
    held = rng.exponential(size=2_000)
    s, far = sensitivity_for_far(cal, held, target)
    sev = np.array([cal.severity(x) for x in held])
    assert far <= target
    assert far == np.mean(sev >= threshold_for(s) - 1e-12)
    if s < 100:
        assert np.mean(sev >= threshold_for(s + 1) - 1e-12) > target


def test_sensitivity_for_far_when_nothing_meets_it() -> None:
    cal = Calibrator.fit([0.0, 1.0])
    s, far = sensitivity_for_far(cal, [1e9, 1e9], 0.0)
    assert (s, far) == (1, 1.0)
