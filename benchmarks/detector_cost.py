"""Cost per point (µs, score + learn) and bytes per asset (snapshot, in memory) per family.

    python benchmarks/detector_cost.py [points]

In memory: a deep ``sys.getsizeof`` over the per-asset online part, its fitted model's shared
objects left out. Single-threaded, on whatever else the machine runs: an order of magnitude.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import orjson

from streams.detectors import fit_detector
from streams.window import SlidingWindow

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("zscore", "zscore", {}),
    ("mahalanobis", "mahalanobis", {}),
    ("river HalfSpaceTrees (defaults)", "river", {"estimator": "HalfSpaceTrees"}),
    ("river HST + MinMaxScaler", "river", {"estimator": "HalfSpaceTrees", "scaler": "MinMaxScaler"}),
    ("river GaussianScorer", "river", {"estimator": "GaussianScorer"}),
    ("river LODA", "river", {"estimator": "LODA"}),
    ("river OneClassSVM + StandardScaler", "river", {"estimator": "OneClassSVM", "scaler": "StandardScaler"}),
]


def deep_size(obj: Any, shared: set[int], seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen or id(obj) in shared or isinstance(obj, type):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, shared, seen) + deep_size(v, shared, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset) or type(obj).__name__ == "deque":
        size += sum(deep_size(v, shared, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), shared, seen)
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            size += deep_size(getattr(obj, slot), shared, seen)
    return size


def main(points: int = 2000, signals: int = 8) -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(2000 + points, signals))
    names = tuple(f"s{i}" for i in range(signals))
    print(f"{signals} signals, window 16, {points} points after fitting on 2000\n")
    print("| family | µs / point | snapshot bytes | in-memory bytes |\n|---|---:|---:|---:|")
    for label, kind, options in CASES:
        model = fit_detector(kind, rows[:2000], names, 16, options)
        det = model.build()
        w = SlidingWindow(16, signals, [tuple(map(float, r)) for r in rows[1984:2000]])
        xs = [tuple(map(float, r)) for r in rows[2000:]]
        t = time.perf_counter()
        for x in xs:
            det.score_one(x, w)
            det.learn_one(x, w)
            w.push(x)
        us = (time.perf_counter() - t) / len(xs) * 1e6
        snap = len(orjson.dumps(det.snapshot()))
        mem = deep_size(det, {id(model)})
        print(f"| {label} | {us:.0f} | {snap:,} | {mem:,} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
