"""Fill methods for a missing slot: pure functions over signal dicts (SPEC §5.2).

A missing slot lies strictly between two real points, ``before`` (stamped ``before_ms``) and
``after`` (stamped ``after_ms``). The filled point has the signals of ``before`` (the last real
point defines which signals a filled point carries); the method decides their values:

* ``previous`` — carry ``before`` forward;
* ``linear``   — interpolate in time between ``before`` and ``after`` at the slot's timestamp
  (a signal ``after`` lacks is carried forward);
* ``zero``     — 0.0 for every signal;
* ``none``     — no point: the slot is skipped (:func:`fill` returns ``None``).

>>> fill("linear", 0, {"v": 1.0}, 300, {"v": 4.0}, at_ms=100)
{'v': 2.0}
>>> fill("previous", 0, {"v": 1.0}, 300, {"v": 4.0}, at_ms=100)
{'v': 1.0}
>>> fill("none", 0, {"v": 1.0}, 300, {"v": 4.0}, at_ms=100) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

FillMethod = Literal["previous", "linear", "zero", "none"]
FILL_METHODS: Final[tuple[str, ...]] = get_args(FillMethod)

Signals = Mapping[str, float]


def fill_previous(before: Signals) -> dict[str, float]:
    """The last real point's signals, carried forward.

    >>> fill_previous({"a": 1.5, "b": -2.0})
    {'a': 1.5, 'b': -2.0}
    """
    return dict(before)


def fill_zero(before: Signals) -> dict[str, float]:
    """0.0 for every signal of the last real point.

    >>> fill_zero({"a": 1.5, "b": -2.0})
    {'a': 0.0, 'b': 0.0}
    """
    return dict.fromkeys(before, 0.0)


def fill_linear(
    before_ms: int, before: Signals, after_ms: int, after: Signals, at_ms: int
) -> dict[str, float]:
    """Each signal interpolated in time at ``at_ms``, with ``before_ms < at_ms < after_ms``.

    A signal ``after`` does not have is carried forward from ``before``. At the endpoints the
    result is exactly ``before`` (and exactly ``after`` for shared signals).

    >>> fill_linear(0, {"a": 0.0, "b": 5.0}, 400, {"a": 8.0}, at_ms=100)
    {'a': 2.0, 'b': 5.0}
    >>> fill_linear(0, {"a": 0.0}, 400, {"a": 8.0}, at_ms=400)
    {'a': 8.0}
    """
    if not before_ms <= at_ms <= after_ms or before_ms == after_ms:
        raise ValueError(
            f"linear fill needs before_ms ≤ at_ms ≤ after_ms and before_ms < after_ms, "
            f"got {before_ms}, {at_ms}, {after_ms}"
        )
    span_ms = after_ms - before_ms
    done_ms = at_ms - before_ms
    out: dict[str, float] = {}
    for name, v0 in before.items():
        v1 = after.get(name)
        if v1 is None or done_ms == 0:
            out[name] = v0
        elif done_ms == span_ms:
            out[name] = v1
        else:
            v = v0 + (v1 - v0) * (done_ms / span_ms)
            out[name] = min(max(v, min(v0, v1)), max(v0, v1))  # no rounding past an endpoint
    return out


def fill(
    method: FillMethod,
    before_ms: int,
    before: Signals,
    after_ms: int,
    after: Signals,
    at_ms: int,
) -> dict[str, float] | None:
    """The signals of the filled point at ``at_ms`` by ``method``, or ``None`` for ``none``.

    >>> fill("zero", 0, {"v": 3.0}, 200, {"v": 5.0}, at_ms=100)
    {'v': 0.0}
    >>> fill("cubic", 0, {}, 1, {}, 0)
    Traceback (most recent call last):
    ...
    ValueError: unknown fill method 'cubic'; choose one of ('previous', 'linear', 'zero', 'none')
    """
    if method == "previous":
        return fill_previous(before)
    if method == "linear":
        return fill_linear(before_ms, before, after_ms, after, at_ms)
    if method == "zero":
        return fill_zero(before)
    if method == "none":
        return None
    raise ValueError(f"unknown fill method {method!r}; choose one of {FILL_METHODS}")


def complete_row(
    signals: tuple[str, ...], method: str, values: Signals, last: tuple[float, ...] | None
) -> tuple[tuple[float, ...] | None, bool]:
    """A model's row of a point's values, a missing signal filled from ``last`` (the row
    before in the asset's window): the row, and whether a signal was filled. ``None`` when a
    signal is missing and cannot be filled (no row before, or ``none``).

    ``previous`` and ``linear`` carry the row before's value forward (the point after is not
    known yet); ``zero`` puts 0.

    >>> complete_row(("a", "b"), "linear", {"a": 1.0}, (0.0, 7.0))
    ((1.0, 7.0), True)
    >>> complete_row(("a", "b"), "zero", {"a": 1.0}, None)
    (None, False)
    """
    try:
        return tuple([values[s] for s in signals]), False
    except KeyError:
        pass
    if last is None or method == "none":
        return None, False
    if method == "zero":
        return tuple(values.get(s, 0.0) for s in signals), True
    return tuple(values.get(s, last[j]) for j, s in enumerate(signals)), True
