"""A point scores to the same bits however it is scored: alone (``score_one``) or in a batch
of any size (``score_many``). Which path scores a point depends on how many of its asset's
points fell due together — on fetch and batch boundaries — so anything less makes a point
replayed after a crash publish a record that differs from the first in its last bits (the
chaos suite counts those as conflicting keys)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.detectors.mahalanobis import MahalanobisModel
from streams.window import SlidingWindow

SIGNALS = ("a", "b", "c", "d")


def rows_of(seed: int, n: int, flat_from: int | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 4)) * rng.uniform(0.1, 100, size=4) + rng.normal(0, 50, size=4)
    rows[:, 1] += 0.7 * rows[:, 0]  # correlated signals: the precision matrix is not diagonal
    if flat_from is not None:
        rows[flat_from:, 2] = rows[flat_from, 2]  # a stuck sensor: flat-line evidence
        rows[flat_from + 3:, 3] = rows[flat_from + 3:, 3] * 1e-9 + 5.0  # nearly flat
    return np.ascontiguousarray(rows)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.sampled_from([2, 5, 16]),
       level=st.sampled_from(["point", "smooth", "recent", "tracked"]), flat=st.booleans())
def test_a_point_scores_to_the_same_bits_alone_and_in_a_batch_of_any_size(
        seed: int, size: int, level: str, flat: bool) -> None:
    train = rows_of(seed, 400, None)
    options: dict = {"point": {}, "smooth": {"smooth": True}, "recent": {"recent": size},
                     "tracked": {"recent": min(3, size), "track": [SIGNALS[1], SIGNALS[3]]}}[level]
    detector = MahalanobisModel.fit(train, SIGNALS, window_size=size, **options).build()
    rows = rows_of(seed + 1, size + 40, size + 10 if flat else None)
    scores, parts = detector.score_many(rows, size)
    for i in range(size, len(rows)):
        one = detector.score_one(tuple(rows[i]), SlidingWindow(size, 4, [tuple(r) for r in
                                                                        rows[i - size:i]]))
        assert one.score == scores[i - size]
        assert one.contributions == tuple(parts[i - size])
    for first in (size + 1, size + 7, len(rows) - 1):  # later starts: smaller batches
        later, later_parts = detector.score_many(rows, first)
        assert np.array_equal(later, scores[first - size:])
        assert np.array_equal(later_parts, parts[first - size:])
