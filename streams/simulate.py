"""A generated fleet of pumps with injected faults, for the demo, tests and the benchmark.

Four correlated signals follow a slowly varying load: motor ``current`` (A), outlet
``pressure`` (bar), motor ``temp`` (°C, lagging the load) and ``vib`` (vibration, mm/s).
Faults are injected on chosen assets: a **spike** (vibration jumps for a few points), a
**drift** (temperature creeps upward), a **stuck** sensor (pressure freezes). Seeded and
deterministic: the same arguments give the same readings.

>>> fleet = generate_fleet(["p1", "p2"], points=50, start_ms=0, interval_ms=1000, seed=3)
>>> len(fleet.readings), fleet.readings[0].asset_id, sorted(fleet.readings[0].signals)
(100, 'p1', ['current', 'pressure', 'temp', 'vib'])
>>> again = generate_fleet(["p1", "p2"], points=50, start_ms=0, interval_ms=1000, seed=3)
>>> again.readings == fleet.readings
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from streams.records import Reading

SIGNALS = ("current", "pressure", "temp", "vib")
FaultKind = Literal["spike", "drift", "stuck"]


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected fault: on ``asset_id``, points ``[start, start + length)`` of its series."""

    asset_id: str
    kind: FaultKind
    start: int
    length: int

    def ts_range(self, start_ms: int, interval_ms: int) -> tuple[int, int]:
        """Half-open time range ``[from_ms, to_ms)`` the fault covers."""
        return (start_ms + self.start * interval_ms,
                start_ms + (self.start + self.length) * interval_ms)


@dataclass(frozen=True, slots=True)
class Fleet:
    """Readings in time order (all assets interleaved) and the faults injected into them."""

    readings: list[Reading]
    faults: list[Fault] = field(default_factory=list)


def pump_series(points: int, rng: np.random.Generator) -> np.ndarray:
    """Normal operation of one pump: ``points`` × 4 signals in :data:`SIGNALS` order."""
    t = np.arange(points)
    period = rng.uniform(300, 900)
    phase = rng.uniform(0, 2 * np.pi)
    wander = np.zeros(points)
    for i in range(1, points):  # AR(1) load wander
        wander[i] = 0.98 * wander[i - 1] + rng.normal(0, 0.01)
    load = 0.7 + 0.15 * np.sin(2 * np.pi * t / period + phase) + wander
    lagged = np.convolve(load, np.ones(30) / 30, mode="full")[:points]
    lagged[:30] = load[:30]
    current = 10 + 8 * load + rng.normal(0, 0.15, points)
    pressure = 3 + 2 * load + rng.normal(0, 0.05, points)
    temp = 55 + 15 * lagged + rng.normal(0, 0.2, points)
    vib = 2 + 0.8 * load + rng.normal(0, 0.1, points)
    return np.column_stack([current, pressure, temp, vib])


def inject(series: np.ndarray, fault: Fault) -> None:
    """Apply one fault to one pump's series, in place."""
    s, e = fault.start, min(fault.start + fault.length, len(series))
    if fault.kind == "spike":
        series[s:e, 3] += 6.0
    elif fault.kind == "drift":
        series[s:e, 2] += np.linspace(0.5, 10.0, e - s)
    elif fault.kind == "stuck":
        series[s:e, 1] = series[s - 1, 1]


def generate_fleet(
    assets: Sequence[str],
    points: int,
    start_ms: int,
    interval_ms: int,
    seed: int = 0,
    faults: Sequence[Fault] = (),
) -> Fleet:
    """Readings of ``points`` instants for each asset, faults injected, interleaved by time."""
    rng = np.random.default_rng(seed)
    series = {a: pump_series(points, rng) for a in assets}
    for f in faults:
        inject(series[f.asset_id], f)
    readings = [
        Reading(a, start_ms + i * interval_ms, dict(zip(SIGNALS, map(float, series[a][i]), strict=True)))
        for i in range(points)
        for a in assets
    ]
    return Fleet(readings, list(faults))


def training_rows(assets: int, points: int, seed: int = 0) -> np.ndarray:
    """Normal operation of several pumps stacked: training data for a fleet model."""
    rng = np.random.default_rng(seed)
    return np.vstack([pump_series(points, rng) for _ in range(assets)])
