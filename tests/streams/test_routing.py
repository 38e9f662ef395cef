"""Routing: an asset is scored on its home partition only; elsewhere its readings are
forwarded there through the source topic's by-asset topic."""

from __future__ import annotations

from streams.partitioning import home_partition
from streams.records import Reading
from streams.routing import Forwarding, HomePartitions, by_asset_topic


def reading(asset: str, ts_ms: int) -> Reading:
    return Reading(asset, ts_ms, {"v": 1.0})


def test_the_home_partition_is_kafkas_and_computed_once_per_asset() -> None:
    homes = HomePartitions(8)
    assets = [f"pump-{i}" for i in range(50)]
    assert [homes.of(a) for a in assets] == [home_partition(a, 8) for a in assets]
    assert [homes.of(a) for a in assets * 3] == [home_partition(a, 8) for a in assets * 3]
    assert len(homes) == 50


def test_a_reading_on_its_home_partition_is_scored_there() -> None:
    homes = HomePartitions(4)
    router = Forwarding(homes)
    home = homes.of("a")
    assert router.route("tele", home, reading("a", 1), arrived_ms=None) == home
    assert router.records() == []


def test_readings_elsewhere_are_forwarded_per_asset_in_order_with_their_latest_arrival() -> None:
    homes = HomePartitions(4)
    router = Forwarding(homes)
    away = (homes.of("a") + 1) % 4
    for ts, arrived in ((1, 30), (2, 10), (3, None)):
        assert router.route("tele", away, reading("a", ts), arrived_ms=arrived) is None
    (topic, part, readings, arrived), = router.records()
    assert (topic, part, [r.ts_ms for r in readings], arrived) == \
        (by_asset_topic("tele"), homes.of("a"), [1, 2, 3], 30)


def test_a_forwarded_reading_is_never_forwarded_again() -> None:
    homes = HomePartitions(4)
    router = Forwarding(homes)
    away = (homes.of("a") + 1) % 4
    assert router.route(by_asset_topic("tele"), away, reading("a", 1), None) == homes.of("a")
    assert router.records() == []
