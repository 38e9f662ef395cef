"""Comparing detections of two scoring paths: the same points, values equal to rounding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest


def assert_same_detections(found: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]]) -> None:
    """``(timestamp, value…)`` rows: the same timestamps, each value (number, or mapping of
    numbers) equal to 1e-9. The stream scores an asset's due points together with numpy, a job
    or a request may score them one by one: both flag the same points, their scores differ
    in the last bits (tests/streams/test_batch_scoring.py)."""
    assert [row[0] for row in found] == [row[0] for row in expected]
    for got, want in zip(found, expected, strict=True):
        for a, b in zip(got[1:], want[1:], strict=True):
            if isinstance(b, Mapping):
                assert isinstance(a, Mapping) and a.keys() == b.keys(), (a, b)
                assert [a[k] for k in b] == pytest.approx([b[k] for k in b], rel=1e-9, abs=1e-12)
            else:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (got, want)
