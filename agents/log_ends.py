"""Tell the engine's arrival clocks (:mod:`streams.arrival`) where the logs it reads end.

The consumer learns each assigned partition's high-water mark with every fetch response,
and when that response came: "at T the log ended at H". Reported before every batch and
tick, it lets the engine know when it has read everything that reached the broker before T.
Where reading a partition begins (needed before its first record) is Faust's committed
offset, else — a new group, ``auto.offset.reset=earliest`` — the log's start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from streams.arrival import ArrivalClocks

log = logging.getLogger(__name__)


def _poll_time(consumer: Any) -> Callable[[Any], int | None]:
    """When the consumer last had a fetch response for a partition (aiokafka keeps it); a
    consumer that does not say gives None, and the caller's wall clock is taken instead."""
    try:
        aio = consumer._thread._ensure_consumer()  # Faust's aiokafka driver: the real client
        last_poll = aio.last_poll_timestamp
    except Exception:  # another driver, or not started: the wall clock is close enough
        return lambda tp: None

    def poll_time(tp: Any) -> int | None:
        try:
            value = last_poll(tp)
        except Exception:  # not assigned any more
            return None
        return int(value) if value is not None else None
    return poll_time


def report_log_ends(consumer: Any, topics: Collection[str], arrival: ArrivalClocks,
                    wall_ms: int) -> None:
    """Report the last fetched high-water mark of every assigned partition of ``topics``."""
    try:
        tps = [tp for tp in consumer.assignment() if tp.topic in topics]
    except Exception:  # the consumer is not running (starting, stopping): nothing to report
        return
    poll_time = _poll_time(consumer)
    for tp in tps:
        try:
            end = consumer.highwater(tp)
        except Exception:  # revoked meanwhile
            continue
        if end is None or end < 0:  # no fetch response yet
            continue
        as_of = poll_time(tp)
        arrival.log_end((tp.topic, tp.partition), int(end), wall_ms if as_of is None else as_of)


async def report_starts(consumer: Any, arrival: ArrivalClocks) -> None:
    """Say where reading begins for partitions with a known log end and nothing read yet."""
    missing = arrival.needs_start()
    if not missing:
        return
    by_tp = {(tp.topic, tp.partition): tp for tp in _assignment(consumer)}
    unknown = []
    for key in missing:
        tp = by_tp.get(key)
        if tp is None:
            continue
        # Faust's committed offset: set by its seek on assignment, then only by commits, which
        # follow processing — so it never claims a record taken but not yet processed is read
        committed = getattr(consumer, "_committed_offset", {}).get(tp)
        if committed is not None and committed >= 0:
            arrival.start(key, int(committed))
        else:
            unknown.append(tp)
    if unknown:
        try:
            earliest = await consumer.earliest_offsets(*unknown)
        except Exception as exc:  # the broker is slow or away: the next tick asks again
            log.debug("log start offsets not read: %s", exc)
            return
        for tp, offset in earliest.items():
            if offset is not None and offset >= 0:
                arrival.start((tp.topic, tp.partition), int(offset))


def _assignment(consumer: Any) -> set[Any]:
    try:
        return set(consumer.assignment())
    except Exception:  # not running
        return set()
