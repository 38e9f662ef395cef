"""A generated, labelled evaluation suite: seeded series with injected, labelled events.

Every series is generated in code from its seed (nothing is stored): a clean series with a
realistic shape, then events injected after its training part (in a random order, the
persisting level shift last), each with the points it labels anomalous. Two kinds of series:

* ``univariate``: one signal — level, slow linear trend, a daily-like seasonality with a
  harmonic, AR(1) wander and white noise;
* ``multivariate``: the four correlated pump signals of :mod:`streams.simulate`
  (``current``, ``pressure``, ``temp``, ``vib`` following one load) plus a slow trend.

Event kinds (:data:`EVENT_KINDS`) and what they label (docs/detectors.md, "Generated
evaluation suite"): ``spike`` (1–3 points), ``variance_change``, ``drift`` (a ramp, then
the sensor is reset), ``stuck`` (a flat line), ``noise_burst`` and ``correlation_break``
(multivariate only: one signal mirrored about its segment mean, so it moves against the
load) are labelled over their whole span; a ``level_shift`` persists to the end of the
series and only its first :data:`LEVEL_SHIFT_LABELLED` points are labelled (after that it
is the new normal); ``missing`` points (a gap: NaN on every signal) are never labelled —
there is no reading to flag — and are marked in :attr:`Series.missing`.

The training part (the first :attr:`Series.train_points`) is clean. Seeds are split:
:data:`CHOOSING_SEEDS` to choose and tune on, :data:`HELD_OUT_SEEDS` only to check.

>>> s = make_series("multivariate", seed=3, points=1200, train_points=300)
>>> s.values.shape, s.signals, s.name
((1200, 4), ('current', 'pressure', 'temp', 'vib'), 'multivariate-3')
>>> sorted({e.kind for e in s.events}) == sorted(EVENT_KINDS)
True
>>> bool(s.labels[:300].any()), bool(s.missing[:300].any())
(False, False)
>>> again = make_series("multivariate", seed=3, points=1200, train_points=300)
>>> np.array_equal(again.values, s.values, equal_nan=True) and again.events == s.events
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from streams.simulate import SIGNALS, pump_series

SeriesKind = Literal["univariate", "multivariate"]
EventKind = Literal[
    "spike", "level_shift", "variance_change", "drift", "stuck", "noise_burst", "missing",
    "correlation_break",
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "spike", "level_shift", "variance_change", "drift", "stuck", "noise_burst", "missing",
    "correlation_break",
)
#: event kinds injected into a univariate series (a correlation needs two signals)
UNIVARIATE_KINDS: tuple[EventKind, ...] = tuple(k for k in EVENT_KINDS if k != "correlation_break")
#: a persisting level shift is anomalous for this many points, then it is the new normal
LEVEL_SHIFT_LABELLED = 50
#: seeds configurations may be chosen and tuned on
CHOOSING_SEEDS: tuple[int, ...] = tuple(range(0, 10))
#: seeds kept out of every choice; only reported
HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(1000, 1010))
DEFAULT_POINTS = 4_000
DEFAULT_TRAIN_POINTS = 1_000


@dataclass(frozen=True, slots=True)
class Event:
    """An injected event: points ``[start, start + length)`` of the signals ``signals``
    (column indices) are changed; the first ``labelled`` of them are labelled anomalous."""

    kind: EventKind
    start: int
    length: int
    signals: tuple[int, ...]
    labelled: int

    @property
    def end(self) -> int:
        """One past the last point the event changes."""
        return self.start + self.length


@dataclass(frozen=True, slots=True)
class Series:
    """One generated series: values (points × signals, NaN where missing), labels, events."""

    name: str
    kind: SeriesKind
    seed: int
    signals: tuple[str, ...]
    values: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    missing: np.ndarray
    events: tuple[Event, ...]
    train_points: int


def _clean_univariate(points: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(points)
    period = rng.uniform(150, 500)
    phase = rng.uniform(0, 2 * np.pi)
    level = rng.uniform(10, 100)
    amp = rng.uniform(1.0, 3.0)
    trend = rng.uniform(-1.0, 1.0) * amp / points  # at most one amplitude over the series
    wander = np.zeros(points)
    shocks = rng.normal(0, 0.05 * amp, points)
    for i in range(1, points):
        wander[i] = 0.97 * wander[i - 1] + shocks[i]
    season = amp * (np.sin(2 * np.pi * t / period + phase) + 0.3 * np.sin(4 * np.pi * t / period))
    noise = rng.normal(0, 0.1 * amp, points)
    return (level + trend * t + season + wander + noise)[:, None]


def _clean_multivariate(points: int, rng: np.random.Generator) -> np.ndarray:
    base = pump_series(points, rng)
    slope = rng.uniform(-0.5, 0.5, base.shape[1]) * base.std(axis=0) / points
    return base + np.arange(points)[:, None] * slope


def _length(kind: EventKind, room: int, rng: np.random.Generator) -> int:
    lo, hi = {
        "spike": (1, 3), "level_shift": (0, 0), "variance_change": (100, 250),
        "drift": (100, 250), "stuck": (30, 120), "noise_burst": (10, 40),
        "missing": (5, 40), "correlation_break": (100, 250),
    }[kind]
    return int(rng.integers(min(lo, room), min(hi, room) + 1))


def _inject(values: np.ndarray, event: Event, rng: np.random.Generator, scale: np.ndarray,
            noise: np.ndarray) -> None:
    """Apply one event in place; ``scale``: each signal's spread, ``noise``: its local noise."""
    s, e = event.start, event.end
    n = e - s
    for j in event.signals:
        col = values[:, j]
        if event.kind == "spike":
            col[s:e] += rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 5.0) * scale[j]
        elif event.kind == "level_shift":
            col[s:e] += rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 2.5) * scale[j]
        elif event.kind == "variance_change":
            col[s:e] += rng.normal(0, rng.uniform(4.0, 6.0) * noise[j], n)
        elif event.kind == "drift":
            col[s:e] += rng.choice([-1.0, 1.0]) * np.linspace(0, rng.uniform(2.0, 3.0), n) * scale[j]
        elif event.kind == "stuck":
            col[s:e] = col[s - 1]
        elif event.kind == "noise_burst":
            col[s:e] += rng.normal(0, rng.uniform(10.0, 15.0) * noise[j], n)
        elif event.kind == "missing":
            col[s:e] = np.nan
        elif event.kind == "correlation_break":
            col[s:e] = 2 * col[s:e].mean() - col[s:e]


def make_series(
    kind: SeriesKind,
    seed: int,
    points: int = DEFAULT_POINTS,
    train_points: int = DEFAULT_TRAIN_POINTS,
) -> Series:
    """One series of ``kind`` from ``seed``: every applicable event kind injected once, each
    in its own stretch of the part after ``train_points``: in a random order, the level
    shift (which persists to the end) last.

    >>> s = make_series("univariate", seed=1, points=1000, train_points=200)
    >>> s.values.shape, len(s.events), int(s.labels.sum()) > 0
    ((1000, 1), 7, True)
    """
    kinds = UNIVARIATE_KINDS if kind == "univariate" else EVENT_KINDS
    if train_points < 2 or points - train_points < 60 * len(kinds):
        raise ValueError(f"{points} points with {train_points} for training leave too little "
                         f"room for {len(kinds)} events")
    # one generator per series: the series (kind, seed) is the same whatever else is generated
    rng = np.random.default_rng([seed, 0 if kind == "univariate" else 1])
    clean = _clean_univariate(points, rng) if kind == "univariate" else _clean_multivariate(points, rng)
    signals = ("value",) if kind == "univariate" else SIGNALS
    train = clean[:train_points]
    scale = train.std(axis=0)
    noise = np.diff(train, axis=0).std(axis=0) / np.sqrt(2)
    values = clean.copy()
    labels = np.zeros(points, dtype=bool)
    missing = np.zeros(points, dtype=bool)
    # the level shift persists, so it comes last: the events before it are seen by a model
    # that has not met it yet, and what follows it tests recovery alone
    others = [k for k in kinds if k != "level_shift"]
    order = [others[i] for i in rng.permutation(len(others))] + ["level_shift"]
    stretch = (points - train_points) // len(kinds)
    events = []
    for i, ek in enumerate(order):
        lo = train_points + i * stretch
        room = stretch // 2
        length = _length(ek, room, rng)
        start = lo + 10 + int(rng.integers(0, stretch - room - 10 + 1))
        if ek == "level_shift":
            length = points - start
            labelled = min(LEVEL_SHIFT_LABELLED, length)
        else:
            labelled = 0 if ek == "missing" else length
        n_sig = values.shape[1]
        cols = tuple(range(n_sig)) if ek == "missing" else (int(rng.integers(0, n_sig)),)
        event = Event(ek, start, length, cols, labelled)
        _inject(values, event, rng, scale, noise)
        labels[start:start + labelled] = True
        if ek == "missing":
            missing[start:start + length] = True
        events.append(event)
    return Series(f"{kind}-{seed}", kind, seed, signals, values, clean, labels, missing,
                  tuple(events), train_points)


def suite(
    seeds: Iterable[int],
    points: int = DEFAULT_POINTS,
    train_points: int = DEFAULT_TRAIN_POINTS,
    kinds: Sequence[SeriesKind] = ("univariate", "multivariate"),
) -> list[Series]:
    """The suite for ``seeds``: one series of each kind per seed.

    >>> [s.name for s in suite([0, 1], points=800, train_points=200)]
    ['univariate-0', 'multivariate-0', 'univariate-1', 'multivariate-1']
    """
    return [make_series(k, seed, points, train_points) for seed in seeds for k in kinds]
