"""Alert grouping: correlation in data points, open/updated/resolved, scopes, filters (SPEC §7).

Each test is named after the rule it checks; docs/alerts.md states the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from streams.alert_codec import alert_record, encode_alert
from streams.alerts import (
    Alert,
    AlertConfig,
    AlertGrouper,
    AlertGrouperConfig,
    alert_id,
    correlates,
    gap_points,
)
from streams.codec import loads
from streams.records import Anomaly

P = 300_000                    # Δ = 5 minutes
T0 = 1_767_225_600_000         # 2026-01-01T00:00Z, a multiple of P
INF = "line-3"
FAR = T0 + 10_000 * P          # a watermark past every test's anomalies
VALIDATE = schemas.validator("alert.v1")


def anomaly(point: int, asset: str = "pump-1", severity: float = 0.9,
            contributions: dict[str, float] | None = None, replay_id: str | None = None,
            offset_ms: int = 0) -> Anomaly:
    """The anomaly of ``asset`` at data point ``point`` (ms ``offset_ms`` into its slot)."""
    return Anomaly(INF, asset, T0 + point * P + offset_ms, "m-1", 1, 7.5, severity, 70, 0.3,
                   {"vib": 1.0} if contributions is None else contributions, False, replay_id)


def grouper(x: int = 5, max_inline: int = 1_000, **rules: Any) -> AlertGrouper:
    return AlertGrouperConfig(INF, P, AlertConfig("high-vib", x, **rules), max_inline).build(None)


def valid(alerts: Iterable[Alert]) -> list[Alert]:
    """Every alert the grouper emits encodes to a record that validates against the schema."""
    out = list(alerts)
    for a in out:
        record = loads(encode_alert(a))
        assert VALIDATE(record) == record == alert_record(a)
        assert a.first_ts_ms <= a.last_ts_ms and 1 <= len(a.assets) <= a.anomaly_count
    return out


def feed(g: AlertGrouper, anomalies: Iterable[Anomaly]) -> list[Alert]:
    """What a worker does: each anomaly as its slot is scored, then the watermark to that slot."""
    out: list[Alert] = []
    for a in anomalies:
        out += g.add(a)
        out += g.advance(a.ts_ms)
    return valid(out)


def run(g: AlertGrouper, points: Iterable[int], asset: str = "pump-1") -> list[Alert]:
    """Feed anomalies at these points, then let every group resolve."""
    return feed(g, (anomaly(p, asset) for p in points)) + valid(g.advance(FAR))


def states(alerts: Iterable[Alert]) -> list[tuple[str, bool, int]]:
    """(state, notify, first point of the group) of each alert."""
    return [(a.state, a.notify, (a.first_ts_ms - T0) // P) for a in alerts]


def groups(alerts: Iterable[Alert]) -> list[list[int]]:
    """The groups, as the points of their anomalies, from their final (resolved) records."""
    return [[(x.ts_ms - T0) // P for x in a.anomalies] for a in alerts if a.state == "resolved"]


def points_after(start: int, gaps: Sequence[int]) -> list[int]:
    out = [start]
    for gap in gaps:
        out.append(out[-1] + gap)
    return out


# ------------------------------------------------------------------ correlation, SPEC §7


@pytest.mark.parametrize(
    ("gaps", "x", "expected"),
    [
        ([3], 5, [[0, 3]]),                      # gap 3 correlated at x = 5
        ([3], 2, [[0], [3]]),                    # gap 3 not correlated at x = 2
        ([6], 5, [[0], [6]]),                    # gap 6 not correlated at x = 5
        ([5], 5, [[0, 5]]),                      # the window is inclusive: gap x correlates
        ([1], 0, [[0], [1]]),                    # x = 0 correlates nothing
        ([1, 1, 1], 0, [[0], [1], [2], [3]]),
        ([4, 4, 4], 5, [[0, 4, 8, 12]]),         # groups chain from the LAST anomaly
        ([4, 6, 5], 5, [[0, 4], [10, 15]]),
    ],
    ids=["gap 3 at x=5", "gap 3 at x=2", "gap 6 at x=5", "gap 5 at x=5", "x=0",
         "x=0 consecutive points", "chain 4,4,4 at x=5", "chain breaks at gap 6"],
)
def test_anomalies_correlate_when_the_gap_from_the_last_is_at_most_x(
    gaps: list[int], x: int, expected: list[list[int]]
) -> None:
    alerts = run(grouper(x), points_after(0, gaps))
    assert groups(alerts) == expected
    assert [a.state for a in alerts].count("open") == len(expected)
    for points in expected:
        for gap in (b - a for a, b in pairwise(points)):
            assert correlates(T0, T0 + gap * P, P, x)


@pytest.mark.parametrize(
    ("earlier_ms", "later_ms", "points"),
    [(0, 3 * P, 3), (0, 3 * P - 1, 2), (P - 1, P, 1), (123, 6 * P + 456, 6)],
)
def test_gap_is_counted_in_data_points_between_slots(earlier_ms: int, later_ms: int, points: int) -> None:
    assert gap_points(T0 + earlier_ms, T0 + later_ms, P) == points


def test_unaligned_timestamps_correlate_by_their_slots() -> None:
    g = grouper(x=2)
    alerts = feed(g, [anomaly(0, offset_ms=P - 1), anomaly(2, offset_ms=0)]) + valid(g.advance(FAR))
    assert groups(alerts) == [[0, 2]]


# ------------------------------------------------------------------ notifications


def test_open_notifies_once_updates_do_not_resolved_notifies() -> None:
    g = grouper(x=5)
    alerts = feed(g, [anomaly(0), anomaly(2), anomaly(4)])
    assert states(alerts) == [("open", True, 0), ("updated", False, 0)]
    assert [a.anomaly_count for a in alerts] == [1, 2]       # the third is folded (below)
    resolved = valid(g.advance(FAR))
    assert states(resolved) == [("resolved", True, 0)]
    assert len({a.alert_id for a in alerts + resolved}) == 1
    assert resolved[0].last_ts_ms == T0 + 4 * P and resolved[0].anomaly_count == 3


def test_updates_are_folded_until_the_count_doubles() -> None:
    g = grouper(x=5)
    alerts = feed(g, [anomaly(p) for p in range(40)])
    assert [(a.state, a.anomaly_count) for a in alerts] == [
        ("open", 1), ("updated", 2), ("updated", 4), ("updated", 8), ("updated", 16), ("updated", 32)]
    resolved = valid(g.advance(FAR))
    assert [(a.state, a.anomaly_count, a.last_ts_ms) for a in resolved] == [
        ("resolved", 40, T0 + 39 * P)]                       # the resolution carries every one


def test_an_update_is_published_when_the_severity_enters_a_higher_tenth() -> None:
    g = grouper(x=5)
    severities = [0.5, 0.55, 0.58, 0.61, 0.65, 0.69, 0.99]
    alerts = feed(g, [anomaly(p, severity=s) for p, s in enumerate(severities)])
    assert [(a.anomaly_count, a.max_severity) for a in alerts] == [
        (1, 0.5), (2, 0.55), (4, 0.61), (7, 0.99)]          # doubled, doubled and 0.6, 0.9


def test_an_update_is_published_when_an_asset_joins_the_group() -> None:
    g = grouper(x=5, scope="inference")
    feed(g, [anomaly(0, "pump-1"), anomaly(1, "pump-1"), anomaly(2, "pump-1")])
    joined = valid(g.add(anomaly(3, "pump-2")))
    assert [(a.state, a.assets, a.anomaly_count) for a in joined] == [
        ("updated", ("pump-1", "pump-2"), 4)]
    assert g.add(anomaly(4, "pump-2")) == []                 # nothing new enough: folded


@pytest.mark.parametrize(
    ("x", "points", "not_yet", "resolved_at"),
    [(5, [0, 3], 8, 9), (2, [10], 12, 13), (0, [7], 7, 8)],
    ids=["x=5: 6 quiet points after point 3", "x=2", "x=0: one point later"],
)
def test_advance_resolves_idle_groups_once_more_than_x_points_pass(
    x: int, points: list[int], not_yet: int, resolved_at: int
) -> None:
    g = grouper(x)
    feed(g, [anomaly(p) for p in points])
    assert g.next_resolution_ms() == T0 + resolved_at * P
    assert g.advance(T0 + not_yet * P + P - 1) == []
    assert states(valid(g.advance(T0 + resolved_at * P))) == [("resolved", True, points[0])]
    assert g.advance(FAR) == [] and g.next_resolution_ms() is None


def test_watermark_going_back_resolves_nothing_new() -> None:
    g = grouper(x=1)
    feed(g, [anomaly(0)])
    assert len(g.advance(T0 + 2 * P)) == 1
    assert g.advance(T0) == [] and g.advance(T0 + 2 * P) == []


def test_a_too_far_anomaly_resolves_the_group_then_opens_a_new_one() -> None:
    g = grouper(x=2)
    g.add(anomaly(0))
    out = valid(g.add(anomaly(3)))  # no advance in between: the anomaly itself resolves
    assert states(out) == [("resolved", True, 0), ("open", True, 3)]


def test_advance_resolves_several_groups_in_the_order_they_went_idle() -> None:
    g = grouper(x=1)
    g.add(anomaly(5, "pump-b"))
    g.add(anomaly(3, "pump-a"))
    out = valid(g.advance(FAR))
    assert [a.assets for a in out] == [("pump-a",), ("pump-b",)]


def test_each_mode_gives_one_single_alert_per_anomaly_that_notifies() -> None:
    g = grouper(x=5, mode="each")
    alerts = run(g, [0, 1, 2, 9])
    assert states(alerts) == [("single", True, p) for p in (0, 1, 2, 9)]
    assert all(a.anomaly_count == 1 and len(a.anomalies) == 1 for a in alerts)
    assert len({a.alert_id for a in alerts}) == 4
    assert g.advance(FAR) == [] and g.next_resolution_ms() is None


# ------------------------------------------------------------------ scope


def test_inference_scope_correlates_across_assets() -> None:
    g = grouper(x=5, scope="inference")
    alerts = feed(g, [anomaly(0, "pump-1"), anomaly(2, "pump-2"), anomaly(4, "pump-1")])
    alerts += valid(g.advance(FAR))
    assert states(alerts) == [("open", True, 0), ("updated", False, 0), ("resolved", True, 0)]
    assert alerts[-1].assets == ("pump-1", "pump-2") and alerts[-1].anomaly_count == 3
    assert alerts[-1].alert_id == alert_id(INF, "high-vib", "*", T0)


def test_asset_scope_keeps_each_asset_apart() -> None:
    g = grouper(x=5, scope="asset")
    alerts = feed(g, [anomaly(0, "pump-1"), anomaly(2, "pump-2"), anomaly(4, "pump-1")])
    alerts += valid(g.advance(FAR))
    assert [(a.state, a.assets) for a in alerts] == [
        ("open", ("pump-1",)), ("open", ("pump-2",)), ("updated", ("pump-1",)),
        ("resolved", ("pump-2",)), ("resolved", ("pump-1",)),   # pump-2 went quiet first
    ]
    assert alerts[0].alert_id == alert_id(INF, "high-vib", "pump-1", T0)


def test_inference_scope_same_point_on_two_assets_is_one_group_even_at_x0() -> None:
    g = grouper(x=0, scope="inference")
    alerts = valid(g.add_all([anomaly(1, "pump-2"), anomaly(1, "pump-1"), anomaly(2, "pump-1")]))
    assert [(a.state, a.assets) for a in alerts] == [
        ("open", ("pump-1",)), ("updated", ("pump-1", "pump-2")),
        ("resolved", ("pump-1", "pump-2")), ("open", ("pump-1",)),
    ]


def test_inference_scope_late_asset_joins_within_the_group_but_not_before_it() -> None:
    g = grouper(x=5, scope="inference")
    feed(g, [anomaly(4, "pump-1"), anomaly(6, "pump-1")])
    joined = valid(g.add(anomaly(5, "pump-2")))               # inside [first, last]: joins
    assert states(joined) == [("updated", False, 4)] and joined[0].last_ts_ms == T0 + 6 * P
    assert g.add(anomaly(3, "pump-3")) == []                  # before the group's first: stale
    valid(g.advance(FAR))
    assert g.add(anomaly(6, "pump-4")) == []                  # at or before a resolved group


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("sensitivity", "severity", "kept"),
    [(70, 0.3, True), (70, 0.29, False), (50, 0.5, True), (50, 0.49, False), (100, 0.0, True),
     (1, 0.99, True), (1, 0.98, False)],
)
def test_anomalies_below_the_configs_sensitivity_threshold_are_ignored(
    sensitivity: int, severity: float, kept: bool
) -> None:
    g = grouper(sensitivity=sensitivity)
    assert len(valid(g.add(anomaly(0, severity=severity)))) == int(kept)


def test_min_severity_holds_notification_until_the_group_reaches_it() -> None:
    g = grouper(x=5, min_severity=0.8)
    alerts = feed(g, [anomaly(0, severity=0.5), anomaly(1, severity=0.9), anomaly(2, severity=0.95)])
    alerts += valid(g.advance(FAR))
    assert states(alerts) == [("open", False, 0), ("updated", True, 0), ("resolved", True, 0)]


def test_min_severity_never_reached_publishes_records_but_never_notifies() -> None:
    g = grouper(x=5, min_severity=0.8)
    alerts = feed(g, [anomaly(0, severity=0.5), anomaly(1, severity=0.79)]) + valid(g.advance(FAR))
    assert [a.state for a in alerts] == ["open", "updated", "resolved"]
    assert not any(a.notify for a in alerts)


def test_min_severity_in_each_mode_gates_each_single_alert() -> None:
    g = grouper(mode="each", min_severity=0.8)
    out = feed(g, [anomaly(0, severity=0.7), anomaly(1, severity=0.8)])
    assert states(out) == [("single", False, 0), ("single", True, 1)]


def test_snooze_silences_new_singles_for_n_points_after_a_notification() -> None:
    alerts = run(grouper(mode="each", snooze_points=3), range(8))
    assert [a.notify for a in alerts] == [True, False, False, False, True, False, False, False]


def test_snooze_silences_new_groups_but_not_the_resolution_of_a_notified_one() -> None:
    alerts = run(grouper(x=0, snooze_points=2), [0, 1, 2, 3])
    assert [(s, n, p) for s, n, p in states(alerts)] == [
        ("open", True, 0), ("resolved", True, 0), ("open", False, 1), ("resolved", False, 1),
        ("open", False, 2), ("resolved", False, 2), ("open", True, 3), ("resolved", True, 3),
    ]


def test_snoozed_group_is_announced_by_its_first_update_after_the_snooze() -> None:
    g = grouper(x=3, snooze_points=4)
    alerts = feed(g, [anomaly(0), anomaly(4), anomaly(6), anomaly(9)]) + valid(g.advance(FAR))
    assert states(alerts) == [
        ("open", True, 0), ("resolved", True, 0),
        ("open", False, 4),                         # 4 points after the last notification
        ("updated", True, 4),                       # 6 points after: the group is announced
        ("resolved", True, 4),                      # (the anomaly at 9 is folded into it)
    ]


def test_snooze_is_per_asset_in_asset_scope() -> None:
    g = grouper(mode="each", snooze_points=5)
    out = feed(g, [anomaly(0, "pump-1"), anomaly(1, "pump-2"), anomaly(2, "pump-1")])
    assert [a.notify for a in out] == [True, True, False]


# ------------------------------------------------------------------ replays, re-delivery, restarts


def test_replay_anomalies_never_alert_nor_change_state() -> None:
    g = grouper(x=5)
    g.add(anomaly(0))
    before = g.snapshot()
    assert g.add(anomaly(1, replay_id="replay-7")) == []
    assert g.add(anomaly(20, replay_id="replay-7")) == []
    assert g.snapshot() == before


@pytest.mark.parametrize("mode", ["group", "each"])
def test_re_delivered_anomaly_is_ignored(mode: str) -> None:
    g = grouper(x=2, mode=mode)
    first = feed(g, [anomaly(0), anomaly(1)])
    assert len(first) == 2
    assert g.add(anomaly(0)) == [] and g.add(anomaly(1)) == []     # open group / latest
    valid(g.advance(FAR))
    assert g.add(anomaly(0)) == [] and g.add(anomaly(1)) == []     # after it resolved
    restarted = g.config.build(orjson.loads(orjson.dumps(g.snapshot())))
    assert restarted.add(anomaly(1)) == [] and restarted.advance(FAR) == []


def test_re_processed_anomalies_give_the_same_alert_ids() -> None:
    a = run(grouper(x=5), [0, 3, 20])
    b = run(grouper(x=5), [0, 3, 20])
    assert [x.alert_id for x in a] == [x.alert_id for x in b]
    assert a[0].alert_id == alert_id(INF, "high-vib", "pump-1", T0)
    assert a[0].alert_id != alert_id(INF, "other-config", "pump-1", T0)


def test_snapshot_restore_mid_group_gives_identical_outputs() -> None:
    rest = [anomaly(4), anomaly(6, severity=0.95), anomaly(30)]
    g = grouper(x=5, snooze_points=2)
    feed(g, [anomaly(0), anomaly(2)])
    restored = g.config.build(orjson.loads(orjson.dumps(g.snapshot())))
    live = feed(g, rest) + g.advance(FAR)
    again = feed(restored, rest) + restored.advance(FAR)
    assert again == live
    assert states(live) == [("updated", False, 0), ("resolved", True, 0),   # 4 folded, 6 doubles
                            ("open", True, 30), ("resolved", True, 30)]


def test_anomaly_of_another_inference_is_a_wiring_error() -> None:
    other = Anomaly("line-4", "pump-1", T0, "m", 1, 1.0, 0.9, 70, 0.3)
    with pytest.raises(ValueError, match="inference 'line-4' fed to the alerts of 'line-3'"):
        grouper().add(other)


# ------------------------------------------------------------------ the record


def test_top_signals_rank_by_summed_contribution_top_three() -> None:
    g = grouper(x=5)
    g.add(anomaly(0, contributions={"vib": 0.6, "temp": 0.3, "flow": 0.1}))
    out = g.add(anomaly(1, contributions={"temp": 0.5, "rpm": 0.35, "vib": 0.05, "flow": 0.1}))
    assert out[0].top_signals == ("temp", "vib", "rpm")
    assert out[0].max_severity == 0.9


def test_inline_anomalies_keep_the_latest_of_a_long_group() -> None:
    g = grouper(x=1, max_inline=3)
    alerts = run(g, range(10))
    final = alerts[-1]
    assert final.anomaly_count == 10
    assert [(a.ts_ms - T0) // P for a in final.anomalies] == [7, 8, 9]


def test_schema_examples_still_validate() -> None:
    for example in schemas.load("alert.v1")["examples"]:
        assert VALIDATE(example) == example


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"name": "a"}, "correlation_points is required"),
        ({"name": "a", "correlation_points": 1, "window": 3}, "unknown field 'window'"),
        ({"name": " a", "correlation_points": 1}, "no surrounding spaces"),
        ({"name": "a", "correlation_points": -1}, "≥ 0, got -1"),
        ({"name": "a", "correlation_points": 1.5}, "≥ 0, got 1.5"),
        ({"name": "a", "correlation_points": 1, "sensitivity": 0}, "from 1 to 100, got 0"),
        ({"name": "a", "correlation_points": 1, "sensitivity": True}, "from 1 to 100, got True"),
        ({"name": "a", "correlation_points": 1, "mode": "batch"}, "mode must be one of group, each"),
        ({"name": "a", "correlation_points": 1, "scope": "plant"}, "scope must be one of asset, inference"),
        ({"name": "a", "correlation_points": 1, "min_severity": 1.5}, "min severity must be a number"),
        ({"name": "a", "correlation_points": 1, "snooze_points": 0}, "snooze must be"),
    ],
)
def test_invalid_alert_config_is_refused_with_a_readable_reason(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match="invalid alert config: ") as err:
        AlertConfig.from_dict(data)
    assert reason in str(err.value)


def test_alert_config_round_trips_through_plain_data() -> None:
    cfg = AlertConfig("a", 3, sensitivity=80, mode="each", scope="inference", min_severity=0.5,
                      snooze_points=4)
    assert AlertConfig.from_dict(orjson.loads(orjson.dumps(cfg.to_dict()))) == cfg
    loose = AlertConfig.from_dict({"name": "a", "correlation_points": 0, "min_severity": 1})
    assert loose.min_severity == 1.0 and isinstance(loose.min_severity, float)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"interval_ms": 0}, "data interval"), ({"inference_id": ""}, "inference id"),
     ({"max_inline_anomalies": 0}, "max inline")],
)
def test_invalid_grouper_config_is_refused(kwargs: dict[str, Any], reason: str) -> None:
    values: dict[str, Any] = {"inference_id": INF, "interval_ms": P, "alert": AlertConfig("a", 1)}
    with pytest.raises(ValueError, match=reason):
        AlertGrouperConfig(**{**values, **kwargs})


# ------------------------------------------------------------------ invariants (Hypothesis)

point_lists = st.lists(st.integers(min_value=0, max_value=120), max_size=40).map(sorted)
xs = st.integers(min_value=0, max_value=12)


def check_invariants(alerts: list[Alert], fed: list[Anomaly]) -> None:
    """Each distinct anomaly in exactly one group; each group opens once and resolves once."""
    by_id: dict[str, list[Alert]] = {}
    for a in alerts:
        by_id.setdefault(a.alert_id, []).append(a)
    for records in by_id.values():
        assert [r.state for r in records].count("open") == 1 and records[0].state == "open"
        assert [r.state for r in records].count("resolved") == 1 and records[-1].state == "resolved"
    members = Counter(x.key for a in alerts if a.state == "resolved" for x in a.anomalies)
    assert set(members) == {a.key for a in fed} and set(members.values()) <= {1}
    opens = sum(a.state == "open" for a in alerts)
    resolves = sum(a.state == "resolved" for a in alerts)
    assert sum(a.notify for a in alerts) == opens + resolves


@given(point_lists, xs)
def test_every_anomaly_is_in_exactly_one_group_that_opens_and_resolves_once(
    points: list[int], x: int
) -> None:
    fed = [anomaly(p) for p in points]
    g = grouper(x)
    alerts = feed(g, fed + fed[::3]) + valid(g.advance(FAR))   # with re-deliveries
    check_invariants(alerts, fed)


@given(st.lists(st.tuples(st.integers(0, 80), st.sampled_from(["p1", "p2", "p3"])), max_size=40), xs)
def test_inference_scope_groups_each_anomaly_once_across_assets(
    pairs: list[tuple[int, str]], x: int
) -> None:
    fed = [anomaly(p, asset) for p, asset in sorted(set(pairs))]
    g = grouper(x, scope="inference")
    alerts = valid(g.add_all(fed)) + valid(g.advance(FAR))
    check_invariants(alerts, fed)


@given(point_lists, xs, st.integers(min_value=1, max_value=10))
def test_a_larger_window_never_yields_more_groups(points: list[int], x: int, more: int) -> None:
    def count(window: int) -> int:
        return sum(a.state == "open" for a in run(grouper(window), points))
    assert count(x + more) <= count(x)


@given(point_lists, xs, st.integers(min_value=0, max_value=40), st.none() | st.integers(1, 6),
       st.sampled_from(["group", "each"]))
def test_rebuilding_from_a_snapshot_anywhere_gives_identical_outputs(
    points: list[int], x: int, cut: int, snooze: int | None, mode: str
) -> None:
    fed = [anomaly(p, severity=0.5 + (p % 5) / 10) for p in points]
    g = grouper(x, min_severity=0.7, snooze_points=snooze, mode=mode)
    feed(g, fed[:cut])
    restored = g.config.build(orjson.loads(orjson.dumps(g.snapshot())))
    assert restored.snapshot() == g.snapshot()
    rest = fed[cut:] + fed[: cut // 2]                       # re-deliveries after the restart
    assert feed(restored, rest) + restored.advance(FAR) == feed(g, rest) + g.advance(FAR)
