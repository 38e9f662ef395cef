"""Fill methods: what a filled point's signals are, per method."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.fill import FILL_METHODS, fill, fill_linear, fill_previous, fill_zero

BEFORE = {"a": 1.0, "b": -4.0}
AFTER = {"a": 5.0, "b": 4.0}


@pytest.mark.parametrize(
    ("method", "at_ms", "expected"),
    [
        ("previous", 100, {"a": 1.0, "b": -4.0}),
        ("previous", 300, {"a": 1.0, "b": -4.0}),
        ("zero", 100, {"a": 0.0, "b": 0.0}),
        ("linear", 100, {"a": 2.0, "b": -2.0}),
        ("linear", 200, {"a": 3.0, "b": 0.0}),
        ("linear", 300, {"a": 4.0, "b": 2.0}),
        ("none", 100, None),
    ],
)
def test_each_method_fills_as_documented(
    method: str, at_ms: int, expected: dict[str, float] | None
) -> None:
    assert fill(method, 0, BEFORE, 400, AFTER, at_ms) == expected  # type: ignore[arg-type]


def test_the_model_offers_exactly_the_methods_fill_implements() -> None:
    from streams.model import FILL_METHODS as MODEL_FILL_METHODS

    assert MODEL_FILL_METHODS is FILL_METHODS  # one list, not a copy to keep in step


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fill method"):
        fill("mean", 0, BEFORE, 400, AFTER, 100)  # type: ignore[arg-type]


def test_filled_point_has_the_signals_of_the_previous_point() -> None:
    before = {"a": 0.0, "only_before": 7.0}
    after = {"a": 10.0, "only_after": 3.0}
    assert fill_linear(0, before, 10, after, 5) == {"a": 5.0, "only_before": 7.0}
    assert fill_previous(before).keys() == fill_zero(before).keys() == before.keys()


def test_fill_does_not_alias_its_input() -> None:
    out = fill_previous(BEFORE)
    out["a"] = 99.0
    assert BEFORE["a"] == 1.0


@pytest.mark.parametrize(("before_ms", "after_ms", "at_ms"), [(0, 100, 101), (0, 100, -1), (5, 5, 5)])
def test_linear_fill_refuses_to_extrapolate(before_ms: int, after_ms: int, at_ms: int) -> None:
    with pytest.raises(ValueError, match="linear fill needs"):
        fill_linear(before_ms, {"a": 0.0}, after_ms, {"a": 1.0}, at_ms)


values = st.floats(-1e9, 1e9, allow_nan=False)


@given(v0=values, v1=values, before_ms=st.integers(-10**12, 10**12),
       span_ms=st.integers(1, 10**9), data=st.data())
def test_linear_fill_stays_between_its_endpoints_and_meets_them(
    v0: float, v1: float, before_ms: int, span_ms: int, data: st.DataObject
) -> None:
    after_ms = before_ms + span_ms
    at_ms = data.draw(st.integers(before_ms, after_ms))
    got = fill_linear(before_ms, {"v": v0}, after_ms, {"v": v1}, at_ms)["v"]
    assert min(v0, v1) <= got <= max(v0, v1)
    if at_ms == before_ms:
        assert got == v0
    if at_ms == after_ms:
        assert got == v1
