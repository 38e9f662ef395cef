"""The generated evaluation suite: deterministic by seed, labelled exactly where it injects."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from streams.evaluation_suite import (
    CHOOSING_SEEDS,
    EVENT_KINDS,
    HELD_OUT_SEEDS,
    LEVEL_SHIFT_LABELLED,
    UNIVARIATE_KINDS,
    Series,
    make_series,
    suite,
)

POINTS, TRAIN = 2_000, 500


@pytest.fixture(scope="module")
def series() -> list[Series]:
    return suite(CHOOSING_SEEDS[:3], points=POINTS, train_points=TRAIN)


def test_same_seed_same_series_and_another_seed_another() -> None:
    a = make_series("multivariate", 7, POINTS, TRAIN)
    b = make_series("multivariate", 7, POINTS, TRAIN)
    c = make_series("multivariate", 8, POINTS, TRAIN)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.labels, b.labels) and a.events == b.events
    assert not np.allclose(a.clean, c.clean)


def test_a_series_does_not_depend_on_what_else_is_generated() -> None:
    alone = make_series("univariate", 2, POINTS, TRAIN)
    among = suite([1, 2], points=POINTS, train_points=TRAIN)[2]
    assert among.name == "univariate-2"
    assert np.array_equal(alone.values, among.values, equal_nan=True)


def test_shapes_and_lengths(series: list[Series]) -> None:
    for s in series:
        width = 1 if s.kind == "univariate" else 4
        assert s.values.shape == s.clean.shape == (POINTS, width)
        assert len(s.signals) == width
        assert s.labels.shape == s.missing.shape == (POINTS,)
        assert s.train_points == TRAIN


def test_every_event_kind_once_per_series(series: list[Series]) -> None:
    for s in series:
        kinds = sorted(e.kind for e in s.events)
        assert kinds == sorted(UNIVARIATE_KINDS if s.kind == "univariate" else EVENT_KINDS)


def test_events_do_not_overlap_and_the_level_shift_comes_last(series: list[Series]) -> None:
    for s in series:
        ordered = sorted(s.events, key=lambda e: e.start)
        assert ordered[-1].kind == "level_shift"
        assert all(a.end < b.start for a, b in pairwise(ordered))


def test_training_part_is_clean(series: list[Series]) -> None:
    for s in series:
        assert np.array_equal(s.values[:TRAIN], s.clean[:TRAIN])
        assert not s.labels[:TRAIN].any() and not s.missing[:TRAIN].any()
        assert all(e.start > TRAIN for e in s.events)


def test_labels_are_exactly_the_labelled_part_of_each_event(series: list[Series]) -> None:
    for s in series:
        expected = np.zeros(POINTS, dtype=bool)
        for e in s.events:
            expected[e.start:e.start + e.labelled] = True
            if e.kind == "level_shift":
                assert e.end == POINTS and e.labelled == min(LEVEL_SHIFT_LABELLED, e.length)
            elif e.kind == "missing":
                assert e.labelled == 0
            else:
                assert e.labelled == e.length
        assert np.array_equal(s.labels, expected)


def test_values_change_only_where_events_were_injected(series: list[Series]) -> None:
    for s in series:
        touched = np.zeros(s.values.shape, dtype=bool)
        for e in s.events:
            touched[e.start:e.end, list(e.signals)] = True
        differs = ~np.isclose(s.values, s.clean, rtol=0, atol=0) | np.isnan(s.values)
        assert not (differs & ~touched).any()
        for e in s.events:  # and each event really changes something
            assert differs[e.start:e.end, list(e.signals)].any(), (s.name, e)


def test_missing_points_are_nan_on_every_signal_and_not_labelled(series: list[Series]) -> None:
    for s in series:
        assert np.array_equal(np.isnan(s.values).any(axis=1), s.missing)
        assert np.isnan(s.values[s.missing]).all()
        assert not (s.labels & s.missing).any()


def test_stuck_sensor_is_flat_and_spikes_stand_out(series: list[Series]) -> None:
    for s in series:
        for e in s.events:
            j = e.signals[0]
            if e.kind == "stuck":
                seg = s.values[e.start - 1:e.end, j]
                assert np.all(seg == seg[0])
            if e.kind == "spike":
                # against the offset already there (a level shift earlier on the same signal)
                offset = s.values[:, j] - s.clean[:, j]
                jump = np.abs(offset[e.start:e.end] - offset[e.start - 1])
                assert (jump >= 3 * s.clean[:TRAIN, j].std()).all()


def test_choosing_and_held_out_seeds_are_disjoint() -> None:
    assert CHOOSING_SEEDS and HELD_OUT_SEEDS
    assert not set(CHOOSING_SEEDS) & set(HELD_OUT_SEEDS)


def test_too_short_a_series_is_refused() -> None:
    with pytest.raises(ValueError, match="too little room"):
        make_series("multivariate", 0, points=600, train_points=500)
