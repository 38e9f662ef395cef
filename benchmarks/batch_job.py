"""Offline detection benchmark (SPEC §10): one job over N timestamps × 4 signals, one process.

``python -m benchmarks.batch_job [--rows 1000000] [--chunk-rows 20000] [--json]``

It writes a CSV of a generated pump (faults injected) to a temporary directory, trains a
model on healthy data of the same kind, then runs the job in a **fresh child process**
(:func:`agents.job_exec.execute`, exactly what a worker's job runner calls: CSV read in
chunks, the stream's scoring path, results streamed into a file renamed into place) and
reports the wall time of that process's job, its points/s, and its peak resident memory
(``VmHWM``), which includes the interpreter and numpy (measured alone first).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from agents.job_exec import execute
from agents.job_io import Storage
from agents.model_store import ModelStore
from streams.model import ModelParams, fit_model
from streams.simulate import SIGNALS, Fault, inject, pump_series, training_rows

T0 = 1_767_225_600_000


def write_input(path: Path, rows: int, seed: int = 5) -> None:
    """``rows`` points of one pump, with a spike, a drift and a stuck sensor every 100,000."""
    block = 100_000
    rng = np.random.default_rng(seed)
    with path.open("w") as fh:
        fh.write("timestamp," + ",".join(SIGNALS) + "\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            series = pump_series(n, rng)
            for f in (Fault("p", "spike", n // 5, 3), Fault("p", "drift", n // 2, 200),
                      Fault("p", "stuck", 4 * n // 5, 120)):
                if f.start + f.length <= n and f.start > 0:
                    inject(series, f)
            ts = T0 + 1000 * (start + np.arange(n))
            lines = [f"{t},{a:.4f},{b:.4f},{c:.4f},{d:.4f}\n" for t, (a, b, c, d) in
                     zip(ts.tolist(), series.tolist(), strict=True)]
            fh.writelines(lines)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(workdir: Path, chunk_rows: int) -> None:
    """Run the job in this process and print its measures as JSON."""
    from streams.jobs import JobSpec

    base_mb = peak_rss_mb()
    spec = JobSpec("bench", "pumps", str(workdir / "line-1.csv"), str(workdir / "out"))
    started = time.perf_counter()
    done = execute(spec, ModelStore(workdir / "models"), Storage(), chunk_rows=chunk_rows)
    seconds = time.perf_counter() - started
    print(orjson.dumps({"state": done.state, "reason": done.reason, "seconds": seconds,
                        "counts": done.counts, "peak_rss_mb": peak_rss_mb(),
                        "rss_before_job_mb": base_mb}).decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.chunk_rows)
        return
    with tempfile.TemporaryDirectory(prefix="assetwatch-bench-") as tmp:
        workdir = Path(tmp)
        model = fit_model(training_rows(4, 5000, seed=11),
                          ModelParams(model_id="pumps", signals=SIGNALS, window_size=16))
        ModelStore(workdir / "models").save(model)
        t = time.perf_counter()
        write_input(workdir / "line-1.csv", args.rows)
        made = time.perf_counter() - t
        size_mb = (workdir / "line-1.csv").stat().st_size / 1e6
        out = subprocess.run([sys.executable, "-m", "benchmarks.batch_job", "--child", str(workdir),
                              "--chunk-rows", str(args.chunk_rows)],
                             capture_output=True, text=True, check=True, env=os.environ)
        result = orjson.loads(out.stdout)
    result.update(rows=args.rows, signals=len(SIGNALS), input_mb=round(size_mb, 1),
                  chunk_rows=args.chunk_rows, detector=model.detector.kind, window=model.window_size,
                  points_per_s=round(args.rows / result["seconds"]), python=platform.python_version(),
                  cpus=os.cpu_count(), input_written_s=round(made, 1))
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    c = result["counts"]
    print(f"{args.rows:,} timestamps × {len(SIGNALS)} signals ({size_mb:.0f} MB CSV), "
          f"{model.detector.kind} window {model.window_size}, chunks of {args.chunk_rows:,} rows")
    print(f"job: {result['state']} in {result['seconds']:.1f} s ({result['points_per_s']:,} timestamps/s); "
          f"{c['scored']:,} scored, {c['anomalies']:,} anomalies")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB (the interpreter and libraries before the job: "
          f"{result['rss_before_job_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
