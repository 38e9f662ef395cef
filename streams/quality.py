"""Data-quality report of a training set: per signal and for its timestamps (SPEC §4).

Per signal, on the slots of the interval grid the training data was re-sampled onto: the
share **missing** (no value in the file for that slot) and **filled** (given a value by the
fill method), the **longest run** of identical consecutive values in the file (a stuck
sensor), whether the signal is **constant**, and min / max / mean of its values in the file.
For the timestamps: **duplicates** (a timestamp seen before) and **non-increasing** steps
(a row whose timestamp is not after the row before it, in file order).

The report informs; it does not decide. Training fails on its own, clearer rules.

>>> import numpy as np
>>> q = signal_quality("temp", np.array([1.0, 1.0, 1.0, np.nan, 2.0]),
...                    missing=1, filled=1, slots=5, stuck_run=3)
>>> q.missing_share, q.filled_share, q.longest_run, q.stuck, q.constant
(0.2, 0.2, 3, True, False)
>>> timestamp_quality(np.array([0, 1000, 1000, 500, 2000]))
(1, 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class SignalQuality:
    """What one signal of a training set looks like."""

    signal: str
    slots: int  # slots of the interval grid (in the training ranges)
    missing: int  # slots without a value in the file
    filled: int  # of those, slots the fill method gave a value
    longest_run: int  # longest run of identical consecutive values in the file
    stuck: bool  # longest_run reached the stuck threshold
    constant: bool  # every value in the file is the same (and there is more than one)
    minimum: float | None
    maximum: float | None
    mean: float | None

    @property
    def missing_share(self) -> float:
        return self.missing / self.slots if self.slots else 0.0

    @property
    def filled_share(self) -> float:
        return self.filled / self.slots if self.slots else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "slots": self.slots,
            "missing": self.missing,
            "filled": self.filled,
            "missing_share": self.missing_share,
            "filled_share": self.filled_share,
            "longest_run": self.longest_run,
            "stuck": self.stuck,
            "constant": self.constant,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SignalQuality:
        def opt(v: Any) -> float | None:
            return None if v is None else float(v)

        return cls(
            signal=str(d["signal"]),
            slots=int(d["slots"]),
            missing=int(d["missing"]),
            filled=int(d["filled"]),
            longest_run=int(d["longest_run"]),
            stuck=bool(d["stuck"]),
            constant=bool(d["constant"]),
            minimum=opt(d["min"]),
            maximum=opt(d["max"]),
            mean=opt(d["mean"]),
        )


@dataclass(frozen=True, slots=True)
class QualityReport:
    """The whole training set: its rows, timestamps, grid and each signal."""

    rows: int  # data rows read from the file
    duplicate_timestamps: int
    non_increasing_timestamps: int
    interval_ms: int
    slots: int  # grid slots in the training ranges
    dropped: int  # slots left out of training: incomplete after the fill
    signals: tuple[SignalQuality, ...]
    assets: int = 0  # assets in the file (0: no asset column, the rows are of one asset)

    def warnings(self) -> list[str]:
        """One readable line per thing worth a look.

        >>> s = SignalQuality("p", 10, 0, 0, 10, True, True, 1.0, 1.0, 1.0)
        >>> QualityReport(10, 2, 3, 1000, 10, 0, (s,)).warnings()
        ['2 duplicate timestamp(s) (the last row of each was kept)', \
'3 non-increasing timestamp step(s) (rows were sorted by time)', 'p: constant (1)']
        """
        out = []
        if self.duplicate_timestamps:
            out.append(f"{self.duplicate_timestamps} duplicate timestamp(s) (the last row of each was kept)")
        if self.non_increasing_timestamps:
            out.append(
                f"{self.non_increasing_timestamps} non-increasing timestamp step(s) "
                "(rows were sorted by time)"
            )
        if self.dropped:
            out.append(f"{self.dropped} incomplete slot(s) left out of training after the fill")
        for s in self.signals:
            if s.constant:
                out.append(f"{s.signal}: constant ({s.minimum:g})")
            elif s.stuck:
                out.append(f"{s.signal}: stuck for {s.longest_run} consecutive points")
            if s.missing_share >= 0.1:
                out.append(f"{s.signal}: {s.missing_share:.0%} of the slots missing")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "duplicate_timestamps": self.duplicate_timestamps,
            "non_increasing_timestamps": self.non_increasing_timestamps,
            "interval_ms": self.interval_ms,
            "slots": self.slots,
            "dropped": self.dropped,
            "signals": [s.to_dict() for s in self.signals],
            "assets": self.assets,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityReport:
        return cls(
            rows=int(d["rows"]),
            duplicate_timestamps=int(d["duplicate_timestamps"]),
            non_increasing_timestamps=int(d["non_increasing_timestamps"]),
            interval_ms=int(d["interval_ms"]),
            slots=int(d["slots"]),
            dropped=int(d["dropped"]),
            signals=tuple(SignalQuality.from_dict(s) for s in d["signals"]),
            assets=int(d.get("assets", 0)),
        )


def timestamp_quality(ts_ms: np.ndarray) -> tuple[int, int]:
    """(duplicate timestamps, non-increasing steps) of timestamps in file order (of one asset).

    >>> timestamp_quality(np.array([3, 2, 1]))
    (0, 2)
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    if ts.size < 2:
        return 0, 0
    duplicates = int(ts.size - np.unique(ts).size)
    non_increasing = int(np.sum(np.diff(ts) <= 0))
    return duplicates, non_increasing


def longest_run(values: np.ndarray) -> int:
    """The longest run of identical consecutive values; NaN breaks a run and counts as none.

    >>> longest_run(np.array([1.0, 2.0, 2.0, 2.0, np.nan, 2.0]))
    3
    >>> longest_run(np.array([np.nan, np.nan]))
    0
    """
    v = np.asarray(values, dtype=float)
    best = run = 0
    prev = math.nan
    for x in v.tolist():
        if math.isnan(x):
            run = 0
        elif run and x == prev:
            run += 1
        else:
            run = 1
        prev = x
        best = max(best, run)
    return best


def signal_quality(
    signal: str, values: np.ndarray, missing: int, filled: int, slots: int, stuck_run: int
) -> SignalQuality:
    """The quality of one signal from its values in the file (NaN: missing) and grid counts.

    >>> signal_quality("x", np.array([np.nan]), 1, 0, 1, 5).mean is None
    True
    """
    v = np.asarray(values, dtype=float)
    present = v[~np.isnan(v)]
    run = longest_run(v)
    lo: float | None = None
    hi: float | None = None
    mean: float | None = None
    if present.size:
        lo, hi, mean = float(present.min()), float(present.max()), float(present.mean())
    return SignalQuality(
        signal=signal,
        slots=slots,
        missing=missing,
        filled=filled,
        longest_run=run,
        stuck=run >= stuck_run,
        constant=present.size > 1 and lo == hi,
        minimum=lo,
        maximum=hi,
        mean=mean if mean is None or math.isfinite(mean) else None,
    )


def format_table(report: QualityReport, signals: Sequence[str] | None = None) -> str:
    """The per-signal report as an aligned text table.

    >>> s = SignalQuality("temp", 10, 1, 1, 2, False, False, 1.5, 9.25, 4.0)
    >>> print(format_table(QualityReport(10, 0, 0, 1000, 10, 0, (s,))))
    signal  missing  filled  longest run  min   max  mean  flags
    temp    10.0%    10.0%             2  1.5  9.25     4
    """
    header = ("signal", "missing", "filled", "longest run", "min", "max", "mean", "flags")
    rows = []
    for s in report.signals:
        if signals is not None and s.signal not in signals:
            continue
        flags = ",".join(f for f, on in (("constant", s.constant), ("stuck", s.stuck)) if on)
        rows.append((
            s.signal, f"{s.missing_share:.1%}", f"{s.filled_share:.1%}", str(s.longest_run),
            _num(s.minimum), _num(s.maximum), _num(s.mean), flags,
        ))
    right = {3, 4, 5, 6}
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = []
    for r in (header, *rows):
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"
