"""Flag runs: minimum duration, hysteresis and adoption, as specifications."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.decision import FlagPolicy, FlagRun


def flags(policy: FlagPolicy, severities: list[float], threshold: float) -> list[bool]:
    run = FlagRun()
    return [policy.step(run, s, threshold).flagged for s in severities]


def test_by_default_a_point_is_flagged_exactly_when_its_severity_reaches_the_threshold() -> None:
    sev = [0.1, 0.3, 0.29, 0.9, 0.0]
    assert flags(FlagPolicy(), sev, 0.3) == [s >= 0.3 for s in sev]
    assert FlagPolicy().is_plain and not FlagPolicy(enter_points=2).is_plain


def test_a_blip_shorter_than_the_minimum_duration_is_not_flagged() -> None:
    policy = FlagPolicy(enter_points=3)
    assert flags(policy, [0.5, 0.5, 0.1, 0.5, 0.5, 0.5, 0.5], 0.3) == \
        [False, False, False, False, False, True, True]


def test_hysteresis_keeps_one_fault_one_run() -> None:
    hovering = [0.35, 0.28, 0.33, 0.27, 0.31, 0.1]
    assert flags(FlagPolicy(), hovering, 0.3) == [True, False, True, False, True, False]
    assert flags(FlagPolicy(exit_margin=0.05), hovering, 0.3) == [True, True, True, True, True, False]


def test_a_closed_run_says_so_and_the_next_needs_a_new_streak() -> None:
    policy, run = FlagPolicy(enter_points=2, exit_margin=0.1), FlagRun()
    out = [policy.step(run, s, 0.3) for s in (0.5, 0.5, 0.1, 0.5, 0.5)]
    assert [(f.flagged, f.closed) for f in out] == \
        [(False, False), (True, False), (False, True), (False, False), (True, False)]


def test_snapshot_round_trip_and_old_state_without_runs() -> None:
    policy, run = FlagPolicy(enter_points=2), FlagRun()
    for s in (0.5, 0.5, 0.5):
        policy.step(run, s, 0.3)
    assert FlagRun.from_snapshot(run.snapshot()) == run
    assert FlagRun.from_snapshot(None) == FlagRun()


def test_bad_policies_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="enter_points"):
        FlagPolicy(enter_points=0)
    with pytest.raises(ValueError, match="exit_margin"):
        FlagPolicy(exit_margin=1.5)
    with pytest.raises(ValueError, match="unknown flag policy field"):
        FlagPolicy.from_dict({"adopt_after": 5})
    assert FlagPolicy.from_dict(FlagPolicy(3, 0.1).to_dict()) == FlagPolicy(3, 0.1)


@given(st.lists(st.floats(0.0, 1.0), max_size=60), st.integers(1, 100), st.integers(1, 100),
       st.integers(1, 4), st.sampled_from([0.0, 0.02, 0.1]))
def test_a_higher_sensitivity_flags_a_superset(severities: list[float], s1: int, s2: int,
                                                enter: int, margin: float) -> None:
    low, high = sorted((s1, s2))
    policy = FlagPolicy(enter_points=enter, exit_margin=margin)
    flagged_high = flags(policy, severities, 1 - high / 100)
    flagged_low = flags(policy, severities, 1 - low / 100)
    assert all(h or not lo for h, lo in zip(flagged_high, flagged_low, strict=True))
