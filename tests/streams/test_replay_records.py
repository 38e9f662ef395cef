"""A replay's records are valid status events at every step of its life."""

from __future__ import annotations

from schemas import validator
from streams.replay import ReplayState


def test_every_state_of_a_replay_is_a_valid_status_event() -> None:
    check = validator("status-event.v1")
    r = ReplayState.accepted("inf/replay/0-2000", "inf", 0, 2_000, total=2, at_ms=1)
    states = [r, r.running(2), r.running(2).progressed(1, 3), r.running(2).succeeded(4),
              r.failed("the worker stopped", 5)]
    for s in states:
        assert check(s.to_record()) == s.to_record()
