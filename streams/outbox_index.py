"""When each outbox entry next needs the delivery timer: so a tick visits only those.

The hook outbox keeps every delivery: pending ones until delivered or dead, done ones for a
day (so a notification taken again is not delivered twice). The delivery timer runs four
times a second; walking the whole outbox each time costs O(outbox) per tick — a day of
alerts, every 250 ms. :class:`OutboxIndex` keeps, per entry, the one time it next matters
(a pending delivery's next attempt, a done one's expiry) in a heap, so a tick pops only the
entries that are due: O(due · log n).

Entries are re-indexed whenever they are written (:meth:`set`), which supersedes their
earlier heap item (lazily: a stale item is skipped when popped).

>>> index = OutboxIndex()
>>> index.set("n1/ops", partition=0, at_ms=1_000, pending=True)
>>> index.set("n2/ops", partition=1, at_ms=5_000, pending=True)
>>> index.set("n0/ops", partition=0, at_ms=86_400_000, pending=False)   # done: its expiry
>>> index.pop_due(2_000, owned={0, 1}), index.pending
(['n1/ops'], 2)
>>> index.pop_due(2_000, owned={0, 1})   # popped: until set again, it is not due again
[]
"""

from __future__ import annotations

import heapq
from collections.abc import Collection


class OutboxIndex:
    """Per outbox key, when it is next due (attempt or expiry), in a lazily-invalidated heap."""

    __slots__ = ("_entries", "_heap", "_pending", "_writes")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        #: key → (version, partition, at_ms, pending); the heap item with another version is stale
        self._entries: dict[str, tuple[int, int, int, bool]] = {}
        self._pending = 0
        #: a version for every write, never reused (a key removed and written again must not
        #: match its old heap items)
        self._writes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def pending(self) -> int:
        """How many indexed entries are pending deliveries (not done)."""
        return self._pending

    def set(self, key: str, partition: int, at_ms: int, pending: bool) -> None:
        """Index ``key``: due at ``at_ms`` (its next attempt if ``pending``, else its expiry)."""
        old = self._entries.get(key)
        self._writes += 1
        version = self._writes
        self._pending += pending - (old is not None and old[3])
        self._entries[key] = (version, partition, at_ms, pending)
        heapq.heappush(self._heap, (at_ms, version, key))

    def remove(self, key: str) -> None:
        """Forget ``key`` (deleted from the outbox).

        >>> index = OutboxIndex(); index.set("k", 0, 5, True); index.remove("k")
        >>> len(index), index.pending, index.pop_due(10, {0})
        (0, 0, [])
        """
        old = self._entries.pop(key, None)
        if old is not None and old[3]:
            self._pending -= 1

    def forget_partitions(self, partitions: Collection[int]) -> None:
        """Forget every entry of partitions no longer owned (re-indexed when they return)."""
        for key in [k for k, (_, p, _, _) in self._entries.items() if p in partitions]:
            self.remove(key)

    def pop_due(self, now_ms: int, owned: Collection[int], limit: int | None = None) -> list[str]:
        """The keys due at ``now_ms`` on owned partitions, earliest first, at most ``limit``;
        each is taken off the heap (it is due again only once :meth:`set` anew — or
        :meth:`retry_later`, when the caller could not handle it now).

        >>> index = OutboxIndex()
        >>> for i in range(3): index.set(f"k{i}", 0, i, True)
        >>> index.pop_due(10, {0}, limit=2), index.pop_due(10, {0})
        (['k0', 'k1'], ['k2'])
        """
        out: list[str] = []
        heap, entries = self._heap, self._entries
        while heap and heap[0][0] <= now_ms and (limit is None or len(out) < limit):
            _, version, key = heapq.heappop(heap)
            entry = entries.get(key)
            if entry is None or entry[0] != version:
                continue  # superseded or removed
            if entry[1] not in owned:
                continue  # a partition given away: its next owner indexes it
            out.append(key)
        return out

    def retry_later(self, key: str, at_ms: int) -> None:
        """Put a popped key back, due at ``at_ms`` (no room to attempt it this tick).

        >>> index = OutboxIndex(); index.set("k", 0, 1, True)
        >>> index.pop_due(5, {0}); index.retry_later("k", 6); index.pop_due(6, {0})
        ['k']
        ['k']
        """
        entry = self._entries.get(key)
        if entry is not None:
            self.set(key, entry[1], at_ms, entry[3])
