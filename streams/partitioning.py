"""Where an asset lives: its home partition, by Kafka's default (murmur2) partitioner.

An asset's state, the anomalies it produces and the readings it is scored from all sit in
one partition, its *home*: ``murmur2(asset_id) mod partitions``, the partition Kafka's Java
client (and librdkafka's ``murmur2_random``) picks for a message keyed by the asset id. A
reading that arrives anywhere else (a gateway batch of several assets under one key, a
producer with another partitioner) is forwarded to its home partition before it is scored.

>>> murmur2(b"21"), murmur2(b"foobar"), murmur2(b"abc")  # Kafka's own test vectors
(-973932308, -790332482, 479470107)
>>> home_partition("pump-017", 8)
2
"""

from __future__ import annotations

from functools import lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def _signed(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), as a signed int.

    >>> murmur2(b"a-little-bit-long-string"), murmur2(b"a-little-bit-longer-string")
    (-985981536, -1486304829)
    >>> murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")
    -58897971
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length % 4
    tail = 4 * n4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return _signed(h)


#: how many (asset, partition count) homes are remembered: a worker's assets, many times over
HOME_CACHE_SIZE = 1 << 16


@lru_cache(maxsize=HOME_CACHE_SIZE)
def home_partition(asset_id: str, partitions: int) -> int:
    """The partition an asset's state and outputs live in (Kafka's ``toPositive(murmur2) % n``).

    Asked for every reading, so remembered per asset (bounded: least recently used first out);
    the pure-Python hash is computed once per asset, not once per reading.

    >>> [home_partition(a, 4) for a in ("pump-1", "pump-2", "pump-3")]
    [3, 3, 0]
    """
    return (murmur2(asset_id.encode()) & 0x7FFFFFFF) % partitions
