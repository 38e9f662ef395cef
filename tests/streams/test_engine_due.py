"""A tick visits only the assets that are due: what it finalises is what a tick over every
asset would, at a cost of the due assets, not of all those held."""

from __future__ import annotations

from typing import Any

from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer, AssetState, Outcome
from streams.simulate import SIGNALS

T0 = 1_767_225_600_000
S = 1_000  # the model's data interval


class CountingScorer(AssetScorer):
    """An AssetScorer that counts the states it is asked to finalise."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls = 0

    def finalise(self, state: AssetState, now_ms: int) -> list[Outcome]:
        self.calls += 1
        return super().finalise(state, now_ms)


def setup(model: Model, **inference: Any) -> tuple[Engine, CountingScorer]:
    scorer = CountingScorer(InferenceConfig("inf", "m", "tele", **inference), model)
    return Engine([scorer], load=lambda k: None, partitions=1), scorer


def point(asset: str, ts_ms: int, offset: int = 0) -> Message:
    return Message("tele", 0, offset, asset.encode(),
                   encode_telemetry([Reading(asset, ts_ms, dict.fromkeys(SIGNALS, 1.0))]))


def test_a_tick_with_ten_thousand_idle_assets_and_one_due_visits_only_the_due_one(
        model: Model) -> None:
    e, scorer = setup(model, max_fill_points=10_000)  # no gap falls due for hours
    idle = [point(f"idle-{i}", T0, offset=i) for i in range(10_000)]
    e.process_batch(idle, now_ms=T0 + 5 * S)  # each finalised at once: nothing pending
    e.process_batch([point("busy", T0 + 10 * S, offset=10_000)], now_ms=T0 + 5 * S)
    assert len(e.states) == 10_001
    scorer.calls = 0
    assert sum(e.tick(now_ms=T0 + 10 * S).counts.values()) == 0
    assert scorer.calls == 0  # nothing due: nothing visited
    out = e.tick(now_ms=T0 + 11 * S)  # busy's slot is due
    assert scorer.calls == 1
    assert out.counts["warming_up"] == 1 and list(out.snapshots) == ["inf/busy"]


def test_an_asset_with_nothing_pending_still_gets_its_gap_when_it_falls_due(model: Model) -> None:
    e, scorer = setup(model, max_fill_points=2)
    e.process_batch([point("p", T0)], now_ms=T0 + S)
    scorer.calls = 0
    assert e.tick(now_ms=T0 + 4 * S - 1).gaps == []  # three slots missing only at T0 + 4 s
    assert scorer.calls == 0
    (_, _, key, gap), = e.tick(now_ms=T0 + 4 * S).gaps
    assert (key, gap.from_ms, gap.points, gap.open_ended) == ("inf/p", T0 + S, 3, True)
    assert scorer.calls == 1


def test_a_point_for_a_slot_a_skipped_tick_passed_is_still_late(model: Model) -> None:
    e, scorer = setup(model, max_fill_points=100)
    e.process_batch([point("p", T0)], now_ms=T0 + S)
    scorer.calls = 0
    e.tick(now_ms=T0 + 10 * S)  # not due: not visited, yet its slots up to T0 + 9 s are past
    assert scorer.calls == 0
    out = e.process_batch([point("p", T0 + 5 * S, offset=1)], now_ms=T0 + 10 * S)
    assert out.counts["late"] == 1 and out.counts["scored"] + out.counts["warming_up"] == 0
    assert out.late[0][2].late_by_ms == 10 * S - 6 * S


def test_a_held_asset_is_finalised_by_the_first_tick_after_its_release(model: Model) -> None:
    e, _ = setup(model)
    e.hold("inf", [0])
    e.process_batch([point("p", T0), point("p", T0 + S, offset=1)], now_ms=T0 + 5 * S)
    assert e.tick(now_ms=T0 + 6 * S).counts["warming_up"] == 0  # held: nothing finalised
    e.release("inf", 0)
    assert e.tick(now_ms=T0 + 7 * S).counts["warming_up"] == 2


def test_an_event_clock_asset_is_visited_once_its_idle_timeout_has_passed(model: Model) -> None:
    e, scorer = setup(model, clock="event", idle_timeout_ms=2_000)
    e.process_batch([point("p", T0)], now_ms=50_000)  # pending: the event clock is at T0
    scorer.calls = 0
    assert e.tick(now_ms=51_999).counts["warming_up"] == 0
    assert scorer.calls == 0
    assert e.tick(now_ms=52_000).counts["warming_up"] == 1
    assert scorer.calls == 1
    e.tick(now_ms=60_000)
    assert scorer.calls == 1  # nothing pending any more: never visited again
