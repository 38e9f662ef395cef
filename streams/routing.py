"""Routing: which partition is an asset's home, and the readings to forward there.

Every asset has a home partition (:func:`streams.partitioning.home_partition`): its state,
its anomalies and the readings it is scored from all live there. A reading that arrives on
another partition of a source topic (a gateway batch of several assets under one key, a
producer with another partitioner) is forwarded to the source topic's *by-asset* topic
(:func:`by_asset_topic`) on its home partition, whence it comes back and is scored; a reading
that arrives on a by-asset topic is never forwarded again. So an asset is only ever scored in
one place, whatever partition its readings arrive on.

The home partition is computed once per asset (pure-Python murmur2 per reading is a
measurable share of the hot path) and cached by :class:`HomePartitions`.

>>> homes = HomePartitions(4)
>>> router = Forwarding(homes)
>>> from streams.records import Reading
>>> r = Reading("a", 1_000, {"v": 1.0})
>>> router.route("tele", 0, r, arrived_ms=5)   # asset a lives on partition 0: score here
0
>>> router.route("tele", 1, r, arrived_ms=7)   # arrived elsewhere: forwarded, not scored
>>> router.route("tele.by-asset", 1, r, arrived_ms=9)  # already forwarded: scored where it is
0
>>> [(topic, part, [x.ts_ms for x in rs], at) for topic, part, rs, at in router.records()]
[('tele.by-asset', 0, [1000], 7)]
"""

from __future__ import annotations

from streams.partitioning import home_partition
from streams.records import Reading

BY_ASSET_SUFFIX = ".by-asset"


def by_asset_topic(source_topic: str) -> str:
    """The internal topic that carries a source topic's readings to their home partitions.

    >>> by_asset_topic("tele")
    'tele.by-asset'
    """
    return source_topic + BY_ASSET_SUFFIX


def is_by_asset(topic: str) -> bool:
    """Whether ``topic`` carries forwarded readings (they are scored where they arrive).

    >>> is_by_asset("tele.by-asset"), is_by_asset("tele")
    (True, False)
    """
    return topic.endswith(BY_ASSET_SUFFIX)


#: (by-asset topic, home partition, readings, when their records last reached the broker)
ForwardRecord = tuple[str, int, list[Reading], int | None]


class HomePartitions:
    """The home partition of each asset, for a fixed partition count, computed once per asset.

    >>> homes = HomePartitions(8)
    >>> homes.of("pump-017") == home_partition("pump-017", 8)
    True
    >>> len(homes)
    1
    """

    __slots__ = ("_cache", "partitions")

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def of(self, asset_id: str) -> int:
        home = self._cache.get(asset_id)
        if home is None:
            home = self._cache[asset_id] = home_partition(asset_id, self.partitions)
        return home

    def __len__(self) -> int:
        return len(self._cache)


class Forwarding:
    """One batch's routing: where each reading is scored, and the forwards it causes.

    Readings of one asset forwarded in one batch travel together, in arrival order, stamped
    with the latest broker time of the records they came in (the forward keeps when they
    first arrived: the arrival clock of ``wall`` inferences)."""

    __slots__ = ("_arrived", "_forward", "homes")

    def __init__(self, homes: HomePartitions) -> None:
        self.homes = homes
        self._forward: dict[tuple[str, int, str], list[Reading]] = {}
        self._arrived: dict[tuple[str, int, str], int] = {}

    def route(self, topic: str, partition: int, reading: Reading,
              arrived_ms: int | None) -> int | None:
        """The home partition to score ``reading`` on here, or None: it was forwarded."""
        home = self.homes.of(reading.asset_id)
        if home == partition or is_by_asset(topic):
            return home
        key = (by_asset_topic(topic), home, reading.asset_id)
        readings = self._forward.get(key)
        if readings is None:
            readings = self._forward[key] = []
        readings.append(reading)
        if arrived_ms is not None:
            self._arrived[key] = max(self._arrived.get(key, 0), arrived_ms)
        return None

    def records(self) -> list[ForwardRecord]:
        """The forwards, one per (by-asset topic, home partition, asset), in first-seen order."""
        return [(topic, part, rs, self._arrived.get((topic, part, asset)))
                for (topic, part, asset), rs in self._forward.items()]
