"""SKAB outlier-detection benchmark through the real streaming code path (``AssetScorer``).

For each of SKAB's 34 labelled files: fit a model on the first 400 rows, then score the
rest online, point by point (score before learn, anomalous points not learnt), and predict
"anomalous" by the sensitivity rule. Point-wise F1, FAR and MAR are pooled over the test
rows of all files (SKAB's protocol) and written beside the published leaderboard.

    .venv/bin/python benchmarks/skab_eval.py --data ../shared/data/skab --out docs/skab.md

The data path defaults to ``$ASSETWATCH_SKAB_DIR`` or ``<repo>/../shared/data/skab``. SKAB is
GPL-3.0: it is read where it lies, never copied into this repository.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streams.decision import FlagPolicy  # noqa: E402
from streams.evaluation import Confusion, confusion, pooled  # noqa: E402
from streams.inference import InferenceConfig  # noqa: E402
from streams.model import Model, ModelParams, fit_model  # noqa: E402
from streams.records import Reading  # noqa: E402
from streams.scoring import AssetScorer  # noqa: E402
from streams.window import SlidingWindow  # noqa: E402

TRAIN_ROWS = 400
FOLDERS = ("valve1", "valve2", "other")
SELECTION = "valve1"  # the files configurations were chosen on; the rest only check them


@dataclass(frozen=True, slots=True)
class SkabFile:
    name: str
    signals: tuple[str, ...]
    ts_ms: np.ndarray
    rows: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True, slots=True)
class Config:
    label: str
    algorithm: str
    window_size: int
    options: dict[str, Any] = field(default_factory=dict)
    flags: FlagPolicy = field(default_factory=FlagPolicy)


# every configuration reported; HEADLINE is the one chosen on the selection files
CONFIGS = (
    Config("zscore (defaults), window 16", "zscore", 16),
    Config("mahalanobis (defaults: point, frozen, λ=0.1), window 16", "mahalanobis", 16),
    Config("mahalanobis, window mean (smooth), window 16", "mahalanobis", 16, {"smooth": True}),
    Config("mahalanobis, adapting α=0.002, window 16", "mahalanobis", 16, {"alpha": 0.002}),
)
HEADLINE = 1
HEADLINE_SENSITIVITY = 70


def default_data_dir() -> Path:
    env = os.environ.get("ASSETWATCH_SKAB_DIR")
    return Path(env) if env else (REPO / ".." / "shared" / "data" / "skab").resolve()


def load(data: Path) -> list[SkabFile]:
    files = []
    for folder in FOLDERS:
        paths = sorted((data / folder).glob("*.csv"), key=lambda p: int(p.stem))
        for path in paths:
            with path.open(newline="") as fh:
                reader = csv.reader(fh, delimiter=";")
                header = next(reader)
                body = list(reader)
            signals = tuple(header[1:9])
            ts = np.array(
                [
                    int(
                        dt.datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S")
                        .replace(tzinfo=dt.UTC)
                        .timestamp()
                        * 1000
                    )
                    for r in body
                ]
            )
            rows = np.array([[float(v) for v in r[1:9]] for r in body])
            labels = np.array([float(r[header.index("anomaly")]) for r in body]) > 0.5
            files.append(SkabFile(f"{folder}/{path.name}", signals, ts, rows, labels))
    if len(files) != 34:
        raise SystemExit(f"expected SKAB's 34 labelled files under {data}, found {len(files)}")
    return files


def run_file(f: SkabFile, cfg: Config, sensitivity: int) -> tuple[Confusion, int, float]:
    """Fit on the first 400 rows, stream the file through AssetScorer; test-part confusion."""
    params = ModelParams(
        model_id="skab",
        signals=f.signals,
        window_size=cfg.window_size,
        algorithm=cfg.algorithm,
        detector_options=cfg.options,
        flags=cfg.flags,
    )
    model = fit_model(f.rows[:TRAIN_ROWS], params)
    scorer = AssetScorer(InferenceConfig("skab", "skab", "skab", sensitivity=sensitivity), model)
    state = scorer.new_state()
    predicted = np.zeros(len(f.rows), dtype=bool)
    t0 = time.perf_counter()
    for i, (ts, row) in enumerate(zip(f.ts_ms, f.rows, strict=True)):
        out = scorer.process(
            state, Reading("pump", int(ts), dict(zip(f.signals, map(float, row), strict=True)))
        )
        predicted[i] = out.anomaly is not None
    elapsed = time.perf_counter() - t0
    c = confusion(f.labels[TRAIN_ROWS:], predicted[TRAIN_ROWS:])
    return c, len(f.rows), elapsed


def cost(algorithm: str, n_signals: int = 4, window: int = 16, points: int = 20_000) -> dict:
    """µs per point (score + learn) and bytes per asset (snapshot JSON, live objects)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2_000, 1))
    rows = base + 0.5 * rng.normal(size=(2_000, n_signals))
    signals = tuple(f"s{j}" for j in range(n_signals))
    model = fit_model(
        rows, ModelParams(model_id="c", signals=signals, window_size=window, algorithm=algorithm)
    )
    det = model.detector.build()
    w = SlidingWindow(window, n_signals, [tuple(r) for r in rows[-window:]])
    xs = [tuple(float(v) for v in r) for r in rng.normal(size=(points, n_signals))]
    t0 = time.perf_counter()
    for x in xs:
        det.score_one(x, w)
        det.learn_one(x, w)
        w.push(x)
    detector_us = (time.perf_counter() - t0) / points * 1e6
    # the whole per-asset path: AssetScorer.process (window, detector, calibration, rule)
    scorer = AssetScorer(InferenceConfig("c", "c", "c"), model)
    state = scorer.new_state()
    readings = [Reading("a", i, dict(zip(signals, x, strict=True))) for i, x in enumerate(xs)]
    t0 = time.perf_counter()
    for r in readings:
        scorer.process(state, r)
    process_us = (time.perf_counter() - t0) / points * 1e6
    snap_det = len(orjson.dumps(state.detector.snapshot()))
    snap_all = len(orjson.dumps(state.snapshot()))
    live_det, live_all = _live_bytes(model, n_signals, window, xs)
    return {
        "algorithm": model.detector.kind,
        "signals": n_signals,
        "window": window,
        "detector_us": detector_us,
        "process_us": process_us,
        "snapshot_detector_bytes": snap_det,
        "snapshot_asset_bytes": snap_all,
        "live_detector_bytes": live_det,
        "live_asset_bytes": live_all,
        "model_bytes": len(orjson.dumps(model.to_dict())),
    }


def _live_bytes(
    model: Model, n_signals: int, window: int, xs: Sequence[tuple[float, ...]], n: int = 2_000
) -> tuple[float, float]:
    """Bytes per asset allocated by n live detector objects / n full AssetStates."""
    scorer = AssetScorer(InferenceConfig("c", "c", "c"), model)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    dets = []
    for i in range(n):
        d = model.detector.build()
        w = SlidingWindow(window, n_signals, xs[i : i + window])
        d.learn_one(xs[i], w)  # live values, not shared defaults
        dets.append(d)
    det_bytes = (tracemalloc.get_traced_memory()[0] - before) / n
    before = tracemalloc.get_traced_memory()[0]
    states = []
    for i in range(n):
        st = scorer.new_state()
        for j, x in enumerate(xs[i : i + window + 2]):
            scorer.process(st, Reading("a", j, dict(zip(model.signals, x, strict=True))))
        states.append(st)
    all_bytes = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    del dets, states
    return det_bytes, all_bytes


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {"nproc": nproc, "cpu": cpu, "python": platform.python_version()}


def fmt(c: Confusion) -> str:
    return f"{c.f1:.3f} | {c.far:.2f} | {c.mar:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "skab.md")
    ap.add_argument("--sensitivities", default="50,60,70,80")
    args = ap.parse_args(argv)
    sensitivities = [int(s) for s in args.sensitivities.split(",")]
    files = load(args.data)
    leaderboard = json.loads((args.data / "leaderboard.json").read_text())

    results: dict[tuple[int, int], list[tuple[str, Confusion]]] = {}
    us: dict[int, float] = {}
    for ci, cfg in enumerate(CONFIGS):
        for s in sensitivities:
            parts, npts, secs = [], 0, 0.0
            for f in files:
                c, n, t = run_file(f, cfg, s)
                parts.append((f.name, c))
                npts += n
                secs += t
            results[(ci, s)] = parts
            us[ci] = secs / npts * 1e6
            p = pooled(c for _, c in parts)
            print(f"{cfg.label} s={s}: F1={p.f1:.3f} FAR={p.far:.2f} MAR={p.mar:.2f}", flush=True)
    costs = [cost(a) for a in ("zscore", "mahalanobis")]
    costs.append(cost("mahalanobis", n_signals=8))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(args, files, sensitivities, results, us, costs, leaderboard))
    print(f"wrote {args.out}")
    return 0


def report(
    args: argparse.Namespace,
    files: list[SkabFile],
    sensitivities: list[int],
    results: dict[tuple[int, int], list[tuple[str, Confusion]]],
    us: dict[int, float],
    costs: list[dict],
    leaderboard: dict,
) -> str:
    m = machine()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# assetwatch on SKAB (outlier detection, online, point by point)",
        "",
        "Generated by `benchmarks/skab_eval.py`; do not edit by hand.",
        "",
        "```sh",
        ".venv/bin/python benchmarks/skab_eval.py --data ../shared/data/skab --out docs/skab.md",
        "```",
        "",
        f"- date: {now}",
        f"- machine: nproc {m['nproc']}, {m['cpu']}, Python {m['python']}",
        f"- data: {len(files)} labelled files of SKAB v0.9 (GPL-3.0, read in place, not copied)",
        "- protocol: per file, fit on the first 400 rows; the rest streamed point by point",
        "  through `AssetScorer` (score before learn, anomalous points not learnt); a point is",
        "  predicted anomalous by the sensitivity rule `severity ≥ 1 − s/100`; TP/FP/TN/FN pooled",
        "  over the test rows of all 34 files; F1 = TP/(TP+(FP+FN)/2), FAR and MAR in %.",
        f"- configurations were compared on the {SELECTION} files only (16 files); the other 18",
        "  are reported separately as a check of the choice, and all 34 together.",
        "",
        "## Pooled results (all 34 files)",
        "",
        "| detector | sensitivity | F1 | FAR % | MAR % | "
        f"F1 / FAR / MAR on {SELECTION} (selection) | F1 / FAR / MAR on the rest (check) |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    for ci, cfg in enumerate(CONFIGS):
        for s in sensitivities:
            parts = results[(ci, s)]
            p = pooled(c for _, c in parts)
            sel = pooled(c for n, c in parts if n.startswith(SELECTION))
            rest = pooled(c for n, c in parts if not n.startswith(SELECTION))
            mark = " **(headline)**" if (ci, s) == (HEADLINE, HEADLINE_SENSITIVITY) else ""
            out.append(
                f"| {cfg.label}{mark} | {s} | {p.f1:.3f} | {p.far:.2f} | {p.mar:.2f} | "
                f"{sel.f1:.3f} / {sel.far:.1f} / {sel.mar:.1f} | "
                f"{rest.f1:.3f} / {rest.far:.1f} / {rest.mar:.1f} |"
            )
    out += [
        "",
        "## Published leaderboard (SKAB README, outlier detection; offline, batch methods)",
        "",
        "| algorithm | F1 | FAR % | MAR % |",
        "|---|--:|--:|--:|",
    ]
    for name, (f1, far, mar) in leaderboard["outlier_detection"]["rows"].items():
        out.append(f"| {name} | {f1} | {far} | {mar} |")
    cfg = CONFIGS[HEADLINE]
    out += [
        "",
        f"## Per file: {cfg.label}, sensitivity {HEADLINE_SENSITIVITY}",
        "",
        "| file | test rows | anomalous | F1 | FAR % | MAR % |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, c in results[(HEADLINE, HEADLINE_SENSITIVITY)]:
        out.append(f"| {name} | {c.n} | {c.tp + c.fn} | {fmt(c)} |")
    out += [
        "",
        "## Cost",
        "",
        "Per point through `AssetScorer.process` while streaming SKAB (8 signals, including",
        "building readings' dicts in the loop): "
        + ", ".join(f"{CONFIGS[ci].label}: {v:.1f} µs" for ci, v in us.items())
        + ".",
        "",
        "Synthetic correlated signals, window 16, 20,000 points (`cost()` in the script):",
        "",
        "| detector | signals | score+learn µs/point | AssetScorer.process µs/point | "
        "snapshot bytes (detector / whole asset) | live bytes (detector / whole asset) | "
        "model artifact bytes |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in costs:
        out.append(
            f"| {row['algorithm']} | {row['signals']} | {row['detector_us']:.1f} | "
            f"{row['process_us']:.1f} | {row['snapshot_detector_bytes']} / "
            f"{row['snapshot_asset_bytes']} | {row['live_detector_bytes']:.0f} / "
            f"{row['live_asset_bytes']:.0f} | {row['model_bytes']} |"
        )
    out += ["", FINDINGS, ""]
    return "\n".join(out)


FINDINGS = """## Where this lands, and why

**The target (F1 ≥ 0.78 with FAR ≤ 20 %, online, per point) is not met.** The multivariate
detector at the default sensitivity 70 is near the offline PCA T²+Q entry of the leaderboard
on F1 but with a higher false-alarm rate; trading along the sensitivity axis gives
FAR ≈ 29 % / MAR ≈ 29 % (sensitivity 60) or FAR ≈ 23 % / MAR ≈ 37 % (50). The z-score detector
is far behind: its per-signal evidence misses the valve faults, which move flow, pressure and
current together by amounts each signal alone finds small.

Why the false alarms (measured with a frozen model, per file): about four fifths of them come
*after* the anomalous segment, where SKAB labels the rows normal again but the testbed has
not returned to its training state (the motor and fluid temperatures, `Temperature` and
`Thermocouple`, carry ~75 % of the sum of squared z-scores on the false alarms). The other fifth is
slow temperature drift before the fault. A model fitted on 400 rows (≈ 7 minutes) has never
seen the temperatures the loop reaches later.

What was tried, all through this script's code path or its numpy equivalent, and chosen on
the 16 `valve1` files only (the other 18 files are the check column above):

- **smoothing** (the Mahalanobis distance of the window's mean, 8–30 points): fewer missed
  alarms but more false ones; at equal FAR the per-point statistic had the better F1, so it is
  the default (`smooth=False`);
- **slow online adaptation** of the reference mean and scale (α = 0.003–0.03, protected: the
  scorer does not let flagged points be learnt): lowers FAR but raises MAR more (the first
  points of a fault that develops slowly are learnt before they are flagged), and protection
  then locks in: once the loop is flagged it is never learnt again, which is exactly the
  post-anomaly state above. Default: frozen (α = 0), adaptation is an option;
- **shrinkage** of the correlation matrix (λ = 0.02, 0.1, 0.3, 0.5): little difference;
  0.1 kept;
- **a drift-aware covariance** (covariance of lag-50/100/200 differences, to down-weight
  signals that wander in training): no gain;
- **calibration**: severity is the rarity of a score on the training scores (empirical body,
  exponential tail: `streams/calibration.py`); sensitivities 50–80 correspond to training
  exceedance 10⁻⁵ … 10⁻²; the threshold sweep above is the calibration sweep.

What would move it (left for later, not done here): a reference model that is re-learnt
when a flagged state persists long after a fault has ended (an explicit "accept as normal"
path in the scorer rather than in the detector), trend-aware models of the slow thermal
signals, and training on more than 400 rows (the anomaly-free file is 9,405 rows, but the
protocol forbids it). No per-file tuning; one configuration for all files.
"""


if __name__ == "__main__":
    raise SystemExit(main())
