"""When each asset next falls due: a heap per clock, so a tick visits only the due assets.

A tick used to finalise every asset held (O(assets) per tick). An asset's state can only
produce output once its inference clock reaches the asset's next due time, so the engine
keeps that time per asset here and a tick pops only the assets whose time has come:
O(due · log n). Times are compared on the clock they are measured on — a *domain*: the
arrival clock of one (topic, partition) for ``wall`` inferences, the injected wall time for
the idle rule of ``event`` ones.

Entries are replaced, not updated in place: :meth:`DueSchedule.set` records the key's new
time and pushes it; heap entries that no longer match are skipped when they surface.

>>> due = DueSchedule()
>>> due.set("inf/a", "wall", 100); due.set("inf/b", "wall", 50); due.set("inf/c", "wall", None)
>>> due.set("inf/b", "wall", 300)          # rescheduled: the entry at 50 is stale
>>> due.pop_due("wall", 200)
['inf/a']
>>> due.pop_due("wall", 200), due.when("inf/b"), len(due)
([], 300, 1)
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable

#: due before any clock reading: visited at the next tick
NOW = -(2**63)


class DueSchedule:
    """Per clock domain, a min-heap of (due time, key) with lazy removal."""

    __slots__ = ("_due", "_heaps", "_size")

    def __init__(self) -> None:
        self._heaps: dict[Hashable, list[tuple[int, str]]] = {}
        #: key → (domain, due time): the one live entry of each scheduled key
        self._due: dict[str, tuple[Hashable, int]] = {}
        #: heap entries in all, stale ones included (rebuilt when mostly stale)
        self._size = 0

    def set(self, key: str, domain: Hashable, due_ms: int | None) -> None:
        """Schedule ``key`` at ``due_ms`` on ``domain``'s clock (None: never, until set again)."""
        if due_ms is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == (domain, due_ms):
            return
        self._due[key] = (domain, due_ms)
        heapq.heappush(self._heaps.setdefault(domain, []), (due_ms, key))
        self._size += 1
        if self._size > 1024 and self._size > 3 * len(self._due):  # mostly stale: rebuild
            self._compact()

    def discard(self, key: str) -> None:
        self._due.pop(key, None)

    def when(self, key: str) -> int | None:
        """The due time ``key`` is scheduled at, if any."""
        entry = self._due.get(key)
        return None if entry is None else entry[1]

    def pop_due(self, domain: Hashable, now_ms: int) -> list[str]:
        """Remove and return the keys due at ``now_ms`` on ``domain``'s clock, earliest first."""
        heap = self._heaps.get(domain)
        out: list[str] = []
        if not heap:
            return out
        live = self._due
        while heap and heap[0][0] <= now_ms:
            due_ms, key = heapq.heappop(heap)
            self._size -= 1
            if live.get(key) == (domain, due_ms):
                del live[key]
                out.append(key)
        return out

    def _compact(self) -> None:
        heaps: dict[Hashable, list[tuple[int, str]]] = {}
        for key, (domain, due_ms) in self._due.items():
            heaps.setdefault(domain, []).append((due_ms, key))
        for heap in heaps.values():
            heapq.heapify(heap)
        self._heaps = heaps
        self._size = len(self._due)

    def __len__(self) -> int:
        return len(self._due)
