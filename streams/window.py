"""Per-asset sliding window: the last ``size`` points before the one being scored.

A fixed-size ring of rows (one float per signal), with explicit plain-data snapshots so a
changelog-backed table can store it and a restarted worker can rebuild it exactly.

>>> w = SlidingWindow(size=3, n_signals=2)
>>> for i in range(4):
...     w.push((float(i), float(10 * i)))
>>> w.full, w.rows()
(True, [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)])
>>> SlidingWindow.from_snapshot(w.snapshot()).rows() == w.rows()
True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

Row = tuple[float, ...]


class SlidingWindow:
    """The last ``size`` rows pushed, oldest first, with per-signal mean and std on demand.

    The same values are also kept column by column (:meth:`columns`): a detector that needs
    each signal's values over the window (flat-line evidence, window statistics) reads them
    without transposing the rows for every point (that transposition was the largest single
    cost of scoring one point).
    """

    __slots__ = ("_cols", "_rows", "n_signals", "size")

    def __init__(self, size: int, n_signals: int, rows: Sequence[Row] = ()) -> None:
        if size < 1:
            raise ValueError(f"window size must be ≥ 1, got {size}")
        self.size = size
        self.n_signals = n_signals
        self._rows: deque[Row] = deque(rows, maxlen=size)
        self._cols: list[deque[float]] = [
            deque((r[j] for r in self._rows), maxlen=size) for j in range(n_signals)]

    def push(self, row: Row) -> None:
        self._rows.append(row)
        for col, v in zip(self._cols, row, strict=True):
            col.append(v)

    def extend(self, rows: Sequence[Row]) -> None:
        """Push ``rows`` in order (the oldest fall out).

        >>> w = SlidingWindow(2, 1, [(0.0,)])
        >>> w.extend([(1.0,), (2.0,)]); w.rows(), [list(c) for c in w.columns()]
        ([(1.0,), (2.0,)], [[1.0, 2.0]])
        """
        self._rows.extend(rows)
        for j, col in enumerate(self._cols):
            col.extend([r[j] for r in rows[-self.size:]])

    @property
    def full(self) -> bool:
        return len(self._rows) == self.size

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def rows(self) -> list[Row]:
        return list(self._rows)

    def last(self) -> Row | None:
        return self._rows[-1] if self._rows else None

    def columns(self) -> list[deque[float]]:
        """Each signal's values over the window, oldest first (do not modify them).

        >>> [list(c) for c in SlidingWindow(2, 2, [(1.0, 5.0), (2.0, 6.0)]).columns()]
        [[1.0, 2.0], [5.0, 6.0]]
        """
        return self._cols

    def column_stats(self) -> list[tuple[float, float]]:
        """(mean, population std) of each signal over the window; NaN where the window is empty.

        >>> SlidingWindow(4, 1, [(1.0,), (2.0,), (3.0,), (4.0,)]).column_stats()
        [(2.5, 1.118033988749895)]
        """
        n = len(self._rows)
        if n == 0:
            return [(math.nan, math.nan)] * self.n_signals
        out = []
        for col in self._cols:
            mean = math.fsum(col) / n
            var = math.fsum((v - mean) ** 2 for v in col) / n
            out.append((mean, math.sqrt(var)))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"size": self.size, "n": self.n_signals, "rows": [list(r) for r in self._rows]}

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> SlidingWindow:
        return cls(int(snap["size"]), int(snap["n"]), [tuple(r) for r in snap["rows"]])
