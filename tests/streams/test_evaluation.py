"""Point-wise confusion counts and SKAB's formulas, as a table."""

from __future__ import annotations

import pytest

from streams.evaluation import Confusion, confusion, pooled


@pytest.mark.parametrize(
    ("labels", "predicted", "expected"),
    [
        ([0, 0, 1, 1], [0, 1, 1, 0], Confusion(tp=1, fp=1, tn=1, fn=1)),
        ([1, 1, 1], [1, 1, 1], Confusion(tp=3)),
        ([0, 0], [0, 0], Confusion(tn=2)),
        ([], [], Confusion()),
    ],
)
def test_confusion_counts(labels: list[int], predicted: list[int], expected: Confusion) -> None:
    assert confusion(labels, predicted) == expected


@pytest.mark.parametrize(
    ("c", "f1", "far", "mar", "precision", "recall"),
    [
        (Confusion(tp=3, fp=1, tn=2, fn=1), 0.75, 100 / 3, 25.0, 0.75, 0.75),
        (Confusion(tp=0, fp=0, tn=5, fn=5), 0.0, 0.0, 100.0, 0.0, 0.0),  # null detector
        (Confusion(tp=5, fp=5, tn=0, fn=0), 2 / 3, 100.0, 0.0, 0.5, 1.0),  # flag everything
        (Confusion(), 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_rates(
    c: Confusion, f1: float, far: float, mar: float, precision: float, recall: float
) -> None:
    assert c.f1 == pytest.approx(f1)
    assert c.far == pytest.approx(far)
    assert c.mar == pytest.approx(mar)
    assert c.precision == pytest.approx(precision)
    assert c.recall == pytest.approx(recall)


def test_f1_is_harmonic_mean_of_precision_and_recall() -> None:
    c = Confusion(tp=7, fp=3, tn=10, fn=4)
    assert c.f1 == pytest.approx(2 * c.precision * c.recall / (c.precision + c.recall))


def test_pooling_sums_counts_before_rates() -> None:
    a, b = Confusion(tp=1, fn=9), Confusion(tp=9, fp=1, tn=10)
    p = pooled([a, b])
    assert p == Confusion(tp=10, fp=1, tn=10, fn=9)
    assert p.f1 != (a.f1 + b.f1) / 2


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion([0, 1], [0])
