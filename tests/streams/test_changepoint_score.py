"""SKAB's change-point score (NAB-style), as its README states it: specifications by example."""

from __future__ import annotations

from itertools import pairwise

import pytest

from streams.changepoint_score import ChangePoints, flips_of, nab_scores, reward, windows_of

W = 60_000  # SKAB's window


def test_a_detection_at_every_change_point_is_perfect() -> None:
    s = nab_scores([ChangePoints((0, 200_000), flips=(0, 200_000))], W)
    assert (s.standard, s.low_fp, s.low_fn, s.missed, s.false_positives) == (100, 100, 100, 0, 0)


def test_no_prediction_is_the_null_detector() -> None:
    s = nab_scores([ChangePoints((0, 200_000), flips=())], W)
    assert (s.standard, s.low_fp, s.low_fn, s.missed) == (0, 0, 0, 2)


def test_a_late_detection_earns_less_than_an_early_one() -> None:
    early = nab_scores([ChangePoints((0,), flips=(5_000,))], W).standard
    late = nab_scores([ChangePoints((0,), flips=(55_000,))], W).standard
    assert 0 < late < early < 100


def test_only_the_first_detection_in_a_window_counts_and_later_ones_are_free() -> None:
    one = nab_scores([ChangePoints((0,), flips=(5_000,))], W)
    more = nab_scores([ChangePoints((0,), flips=(5_000, 20_000, 59_000))], W)
    assert one == more


def test_a_prediction_outside_every_window_costs_a_fp_per_profile() -> None:
    clean = nab_scores([ChangePoints((0,), flips=(0,))], W)
    noisy = nab_scores([ChangePoints((0,), flips=(0, 100_000))], W)
    assert noisy.false_positives == 1
    # one window: null −A_fn·1, perfect +1; a FP moves S by A_fp
    assert clean.standard - noisy.standard == pytest.approx(100 * 0.11 / 2)
    assert clean.low_fp - noisy.low_fp == pytest.approx(100 * 0.22 / 2)
    assert clean.low_fn - noisy.low_fn == pytest.approx(100 * 0.11 / 3)


def test_a_prediction_before_the_change_is_a_false_positive_not_a_detection() -> None:
    s = nab_scores([ChangePoints((100_000,), flips=(99_000,))], W)
    assert (s.missed, s.false_positives) == (1, 1)
    assert s.standard < 0


def test_overlapping_windows_cut_the_later_one() -> None:
    assert windows_of([0, 30_000], W) == [(0, 60_000), (60_000, 90_000)]
    # a detection at 40 s belongs to the first window only: the second is missed
    s = nab_scores([ChangePoints((0, 30_000), flips=(40_000,))], W)
    assert (s.missed, s.false_positives) == (1, 0)


def test_files_are_summed_before_normalising() -> None:
    a, b = ChangePoints((0,), flips=(0,)), ChangePoints((0, 100_000, 200_000), flips=())
    # S = 1 − 3 over 4 windows: 100 · (S − (−4)) / (4 − (−4)); not the mean of 100 and 0
    assert nab_scores([a, b], W).standard == pytest.approx(25.0)


def test_reward_curve_runs_from_a_tp_to_a_fp_monotonically() -> None:
    values = [reward(0, t, W, 1.0, -0.11) for t in range(0, W + 1, 1_000)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(-0.11)
    assert all(x >= y for x, y in pairwise(values))


def test_flips_are_the_changes_of_the_prediction_and_a_flagged_first_row() -> None:
    assert flips_of([10, 20, 30, 40], [False, True, False, False]) == (20, 30)
    assert flips_of([10, 20, 30], [True, True, True]) == (10,)
    assert flips_of([], []) == ()


def test_a_repeated_change_point_leaves_an_empty_window_that_scores_without_dividing_by_zero() -> None:
    assert windows_of([0, 0], W) == [(0, W), (W, W)]
    s = nab_scores([ChangePoints((0, 0), flips=(W,))], W)
    assert s.missed == 0 and s.false_positives == 0
