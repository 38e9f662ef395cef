"""The model lifecycle: every (from, to) pair of statuses, table-driven."""

from __future__ import annotations

import pytest

from streams.lifecycle import TRANSITIONS, Lifecycle, ModelStatus, Rejected, advance

C, R, OK, F = ModelStatus.CREATED, ModelStatus.RUNNING, ModelStatus.COMPLETED, ModelStatus.FAILED


def at(status: ModelStatus) -> Lifecycle:
    """A lifecycle that reached ``status`` by allowed moves, one ms apart."""
    lc = Lifecycle.created(0)
    path = {C: [], R: [R], OK: [R, OK], F: [R, F]}[status]
    for i, s in enumerate(path, start=1):
        nxt = advance(lc, s, i, "boom" if s is F else None)
        assert isinstance(nxt, Lifecycle)
        lc = nxt
    return lc


@pytest.mark.parametrize(
    ("frm", "to", "allowed"),
    [
        (C, C, False), (C, R, True), (C, OK, False), (C, F, False),
        (R, C, False), (R, R, False), (R, OK, True), (R, F, True),
        (OK, C, False), (OK, R, False), (OK, OK, False), (OK, F, False),
        (F, C, False), (F, R, False), (F, OK, False), (F, F, False),
    ],
)
def test_only_listed_transitions_are_allowed(frm: ModelStatus, to: ModelStatus, allowed: bool) -> None:
    out = advance(at(frm), to, 100, "why" if to is F else None)
    assert isinstance(out, Lifecycle) is allowed
    assert (to in TRANSITIONS[frm]) is allowed
    if allowed:
        assert isinstance(out, Lifecycle) and out.status is to
    else:
        assert isinstance(out, Rejected) and frm.value in out.reason and to.value in out.reason


def test_failed_needs_a_reason() -> None:
    out = advance(at(R), F, 5, reason="  ")
    assert isinstance(out, Rejected) and "reason" in out.reason


def test_only_failed_carries_a_reason() -> None:
    out = advance(at(R), OK, 5, reason="all good")
    assert isinstance(out, Rejected) and "only a failure" in out.reason


def test_time_does_not_go_backwards() -> None:
    out = advance(at(R), OK, -1)
    assert isinstance(out, Rejected) and "backwards" in out.reason


def test_final_statuses_record_when_they_ended_and_only_completed_is_schedulable() -> None:
    assert at(R).completed_at_ms is None and not at(R).final
    assert at(OK).completed_at_ms == 2 and at(OK).schedulable
    assert at(F).completed_at_ms == 2 and not at(F).schedulable and at(F).reason == "boom"
    assert [s for s, _ in at(OK).history] == [C, R, OK]


@pytest.mark.parametrize("status", [C, R, OK, F])
def test_round_trip(status: ModelStatus) -> None:
    assert Lifecycle.from_dict(at(status).to_dict()) == at(status)
