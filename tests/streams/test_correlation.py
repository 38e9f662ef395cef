"""Inference-scope correlation: the groups do not depend on how the partitions' feeds interleave."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.alerts import Alert, AlertConfig
from streams.correlation import (
    MAX_PENDING,
    FeedItem,
    InferenceCorrelation,
    Progress,
    decode_feed,
    encode_feed,
    partition_progress,
)
from streams.records import Anomaly

STEP = 1_000
PLANT = AlertConfig("plant", correlation_points=2, scope="inference")


def anomaly(asset: str, point: int, inference: str = "line-3") -> Anomaly:
    return Anomaly(inference, asset, point * STEP, "m", 1, 9.0, 0.9, 70, 0.3, {"vib": 1.0})


def correlation(partitions: int = 2, alerts: tuple[AlertConfig, ...] = (PLANT,)) -> InferenceCorrelation:
    return InferenceCorrelation("line-3", STEP, alerts, partitions=partitions)


def feed(c: InferenceCorrelation, items: list[FeedItem]) -> list[Alert]:
    out: list[Alert] = []
    for item in items:
        out += c.progress(item.partition, item.watermark_ms) if isinstance(item, Progress) else c.add(item)
    return out


def summary(alerts: list[Alert]) -> list[tuple[str, str, int, tuple[str, ...]]]:
    return [(a.alert_id, a.state, a.anomaly_count, a.assets) for a in alerts]


def test_nothing_is_released_until_every_partition_has_reported() -> None:
    c = correlation(partitions=3)
    assert feed(c, [anomaly("a", 1), Progress(0, 5 * STEP), Progress(1, 5 * STEP)]) == []
    assert c.watermark_ms is None
    # partition 2 has no assets: it counts, and bounds nothing
    assert [a.state for a in c.progress(2, None)] == ["open", "resolved"]
    assert c.watermark_ms == 5 * STEP


def test_anomalies_of_several_assets_are_one_group_across_partitions() -> None:
    c = correlation()
    out = feed(c, [anomaly("a", 3), Progress(0, 3 * STEP), anomaly("b", 1), anomaly("b", 5),
                   Progress(1, 5 * STEP), Progress(0, 9 * STEP), Progress(1, 9 * STEP)])
    assert [(a.state, a.assets, a.anomaly_count) for a in out] == [
        ("open", ("b",), 1), ("updated", ("b", "a"), 2),     # b's second anomaly is folded
        ("resolved", ("b", "a"), 3)]
    assert out[0].notify and not out[1].notify and out[-1].notify


def test_the_slowest_partition_holds_the_resolution() -> None:
    c = correlation()
    out = feed(c, [anomaly("a", 1), Progress(0, 20 * STEP), Progress(1, 1 * STEP)])
    assert [a.state for a in out] == ["open"]
    assert c.progress(1, 3 * STEP) == []             # x + 1 = 3 points after 1 is point 4
    assert [a.state for a in c.progress(1, 4 * STEP)] == ["resolved"]


def test_a_redelivered_feed_changes_nothing() -> None:
    items: list[FeedItem] = [anomaly("a", 1), Progress(0, 2 * STEP), anomaly("b", 2),
                             Progress(1, 2 * STEP), Progress(0, 9 * STEP), Progress(1, 9 * STEP)]
    c = correlation()
    first = feed(c, items)
    assert feed(c, items) == []
    assert [a.state for a in first] == ["open", "updated", "resolved"]


def test_a_restarted_worker_reporting_nothing_yet_does_not_move_the_watermark_back() -> None:
    c = correlation()
    feed(c, [Progress(0, 5 * STEP), Progress(1, 6 * STEP)])
    assert c.progress(0, None) == [] and c.progress(0, 3 * STEP) == []
    assert c.watermark_ms == 5 * STEP


def test_an_anomaly_behind_the_watermark_is_grouped_at_once() -> None:
    """A partition whose first assets appear after the others moved on: nothing waits for it."""
    c = correlation()
    feed(c, [Progress(0, 10 * STEP), Progress(1, None)])
    assert [a.state for a in c.add(anomaly("late", 8))] == ["open"]


def test_asset_scope_configs_are_not_grouped_here() -> None:
    c = correlation(alerts=(AlertConfig("per-pump", 2), PLANT))
    out = feed(c, [anomaly("a", 1), Progress(0, 1 * STEP), Progress(1, 1 * STEP)])
    assert {a.alert_config for a in out} == {"plant"}


def test_held_anomalies_are_bounded() -> None:
    c = correlation(partitions=2)
    c.progress(1, 0)  # partition 0 never reports
    out = feed(c, [anomaly(f"p{i % 7}", i // 7 * 10 + 10) for i in range(MAX_PENDING + 50)])
    assert len(c.snapshot()["pending"]) <= MAX_PENDING
    assert out and out[0].state == "open"


def test_an_anomaly_of_another_inference_is_a_wiring_error() -> None:
    with pytest.raises(ValueError, match="other"):
        correlation().add(anomaly("a", 1, inference="other"))


@pytest.mark.parametrize("item", [anomaly("a", 1), Progress(2, 7 * STEP), Progress(0, None)])
def test_feed_records_round_trip(item: FeedItem) -> None:
    assert decode_feed(encode_feed(item)) == item


@pytest.mark.parametrize("raw", [b"{}", b'{"type": "x"}', b"not json", b'{"type": "progress"}'])
def test_an_unreadable_feed_record_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="feed record"):
        decode_feed(raw)


@pytest.mark.parametrize(("assets", "expected"), [
    ([(5, False), (9, False), (2, True)], 5),  # the slowest active asset
    ([(5, True), (9, True)], 9),               # all idle: everything pending was finalised
    ([(None, False), (4, False)], 4),          # an asset that finalised nothing does not count
    ([], None),
])
def test_partition_progress(assets: list[tuple[int | None, bool]], expected: int | None) -> None:
    assert partition_progress(assets) == expected


# --------------------------------------------------------------------------- properties

partition_feeds = st.lists(  # per partition: which points of its asset are anomalous
    st.sets(st.integers(0, 30), max_size=8), min_size=1, max_size=4)


def feeds_of(anomalous: list[set[int]]) -> list[list[FeedItem]]:
    """Each partition's feed as one worker sends it: a point's anomaly, then its progress."""
    out: list[list[FeedItem]] = []
    for p, points in enumerate(anomalous):
        items: list[FeedItem] = []
        for t in range(0, 40):
            if t in points:
                items.append(anomaly(f"asset-{p}", t))
            if t % 3 == 0 or t == 39:
                items.append(Progress(p, t * STEP))
        out.append(items)
    return out


def interleave(feeds: list[list[FeedItem]], seed: int) -> list[FeedItem]:
    rng = random.Random(seed)
    cursors = [0] * len(feeds)
    out: list[FeedItem] = []
    while any(c < len(f) for c, f in zip(cursors, feeds, strict=True)):
        p = rng.choice([i for i, f in enumerate(feeds) if cursors[i] < len(f)])
        out.append(feeds[p][cursors[p]])
        cursors[p] += 1
    return out


@settings(max_examples=60, deadline=None)
@given(partition_feeds, st.integers(0, 10**6), st.integers(0, 10**6))
def test_any_interleaving_of_the_partitions_gives_the_same_alerts(
        anomalous: list[set[int]], seed_a: int, seed_b: int) -> None:
    feeds = feeds_of(anomalous)
    n = len(feeds)
    a = feed(correlation(n), interleave(feeds, seed_a))
    b = feed(correlation(n), interleave(feeds, seed_b))
    assert summary(a) == summary(b)
    assert sum(x.state == "open" for x in a) == sum(x.state == "resolved" for x in a)


@settings(max_examples=40, deadline=None)
@given(partition_feeds, st.integers(0, 10**6), st.floats(0, 1))
def test_a_restart_from_a_snapshot_changes_nothing(
        anomalous: list[set[int]], seed: int, where: float) -> None:
    items = interleave(feeds_of(anomalous), seed)
    n = len(anomalous)
    whole = feed(correlation(n), items)
    cut = int(len(items) * where)
    before = correlation(n)
    head = feed(before, items[:cut])
    restored = InferenceCorrelation("line-3", STEP, (PLANT,), before.snapshot(), partitions=n)
    assert summary(head + feed(restored, items[cut:])) == summary(whole)
