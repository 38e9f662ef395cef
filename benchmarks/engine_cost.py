"""Micro-benchmark of the pure engine: decode, route, slot and score, no broker, no Faust.

Run: ``python -m benchmarks.engine_cost [--assets 200] [--points 600] [--repeat 3]``

A generated fleet (streams/simulate.py: four correlated pump signals, a spike and a stuck
sensor injected) is encoded beforehand into telemetry messages of 100 readings (one asset's
consecutive points) and of 1 reading, each on the asset's home partition (as the by-asset
routing delivers them). The timed part is only :meth:`streams.engine.Engine.process_batch`
over batches of messages (as a consumer hands them over) and a final
:meth:`~streams.engine.Engine.tick`, with the changed states snapshotted every
:data:`SNAPSHOT_EVERY_POINTS` points as the worker's 1 s store cadence does (before that
cadence every batch snapshotted its states), with an event-clock inference of the ``auto`` model
(Mahalanobis, window 16) trained as benchmarks/pipeline.py trains it.

Prints, as a Markdown table, points/s and µs/point of wall and of CPU time (the best of
``--repeat`` runs, each on a fresh engine; CPU time is the steadier on a shared machine), and
the process's memory: its resident set (VmRSS) with the input built, before and after the
timed runs (what the engines keep), and its peak (VmHWM: building the input of the 1-reading
workload dominates it).
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model, ModelParams, fit_model
from streams.partitioning import home_partition
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet, training_rows

START_MS = 1_767_225_600_000
INTERVAL_MS = 1_000
PARTITIONS = 8
#: the worker stores the states its batches changed once a second
#: (``Settings.snapshot_interval_ms``): about this many points at its sustained rates
SNAPSHOT_EVERY_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class Run:
    workload: str
    points: int
    messages: int
    seconds: float
    cpu_seconds: float
    anomalies: int

    @property
    def us_per_point(self) -> float:
        return self.seconds / self.points * 1e6

    @property
    def cpu_us_per_point(self) -> float:
        return self.cpu_seconds / self.points * 1e6


def bench_model() -> Model:
    """The benchmark's model: as benchmarks/pipeline.py fits it."""
    return fit_model(training_rows(8, 2000, seed=3),
                     ModelParams(model_id="bench", signals=SIGNALS, window_size=16))


def messages(assets: int, points: int, per_message: int) -> list[Message]:
    """The fleet's readings as telemetry messages of ``per_message`` readings of one asset,
    interleaved across assets in time order, each on its asset's home partition."""
    names = [f"pump-{i:05d}" for i in range(assets)]
    faults = [Fault(names[0], "spike", points // 2, 3), Fault(names[-1], "stuck", points // 3, 40)]
    fleet = generate_fleet(names, points, START_MS, INTERVAL_MS, seed=7, faults=faults)
    by_asset: dict[str, list[Reading]] = {}
    for r in fleet.readings:
        by_asset.setdefault(r.asset_id, []).append(r)
    offsets = [0] * PARTITIONS
    out = []
    for start in range(0, points, per_message):
        for name in names:
            chunk = by_asset[name][start:start + per_message]
            part = home_partition(name, PARTITIONS)
            out.append(Message("tele", part, offsets[part], name.encode(), encode_telemetry(chunk)))
            offsets[part] += 1
    return out


def run(model: Model, msgs: list[Message], points: int, batch: int, workload: str) -> Run:
    """Time one fresh engine over ``msgs`` in consumer batches of ``batch`` messages."""
    cfg = InferenceConfig("inf", "bench", "tele", clock="event", idle_timeout_ms=1_000)
    engine = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=PARTITIONS)
    engine.owned = set(range(PARTITIONS))
    engine.defer_snapshots = True  # as the worker: states stored on a cadence, not per batch
    per_message = points // max(len(msgs), 1)
    anomalies = unstored = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(msgs), batch):
        out = engine.process_batch(msgs[i:i + batch], now_ms=0)
        anomalies += len(out.anomalies)
        unstored += batch * per_message
        if unstored >= SNAPSHOT_EVERY_POINTS:
            engine.take_snapshots()
            unstored = 0
    out = engine.tick(now_ms=10**13)
    engine.take_snapshots()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    anomalies += len(out.anomalies)
    return Run(workload, points, len(msgs), seconds, cpu, anomalies)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assets", type=int, default=200)
    p.add_argument("--points", type=int, default=600, help="points per asset")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", choices=("100", "1"), default=None,
                   help="run one workload only (for a profiler)")
    args = p.parse_args(argv)
    model = bench_model()
    total = args.assets * args.points
    workloads = [("100 readings/message", 100, 50), ("1 reading/message", 1, 500)]
    if args.only:
        workloads = [w for w in workloads if w[1] == int(args.only)]
    print(f"engine_cost: {args.assets} assets × {len(SIGNALS)} signals × {args.points} points, "
          f"python {platform.python_version()}, {platform.machine()}\n")
    print("| workload | points | best s | points/s | µs/point | CPU µs/point | anomalies "
          "| RSS MB before → after |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for name, per_message, batch in workloads:
        msgs = messages(args.assets, args.points, per_message)
        before = rss_mb("VmRSS")
        best = min((run(model, msgs, total, batch, name) for _ in range(args.repeat)),
                   key=lambda r: r.cpu_seconds)
        print(f"| {name} | {best.points:,} | {best.seconds:.2f} | {best.points / best.seconds:,.0f}"
              f" | {best.us_per_point:.2f} | {best.cpu_us_per_point:.2f} | {best.anomalies}"
              f" | {before:.0f} → {rss_mb('VmRSS'):.0f} |")
        del msgs
    print(f"\npeak RSS (VmHWM) {rss_mb('VmHWM'):.0f} MB")


def rss_mb(field: str) -> float:
    """This process's ``VmRSS`` or ``VmHWM``, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
