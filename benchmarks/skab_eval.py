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

from streams.changepoint_score import ChangePoints, NabScores, flips_of, nab_scores  # noqa: E402
from streams.decision import FlagPolicy  # noqa: E402
from streams.evaluation import Confusion, confusion, pooled  # noqa: E402
from streams.inference import InferenceConfig  # noqa: E402
from streams.model import Model, ModelParams, fit_model  # noqa: E402
from streams.records import Reading  # noqa: E402
from streams.scoring import AssetScorer  # noqa: E402
from streams.window import SlidingWindow  # noqa: E402

TRAIN_ROWS = 400
CHANGEPOINT_WINDOW_MS = 60_000  # SKAB's detection window, to the right of each change point
FOLDERS = ("valve1", "valve2", "other")
SELECTION = "valve1"  # the files configurations were chosen on; the rest only check them


@dataclass(frozen=True, slots=True)
class SkabFile:
    name: str
    signals: tuple[str, ...]
    ts_ms: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    changepoints: tuple[int, ...]  # the true change points' times (ms) in the test part


@dataclass(frozen=True, slots=True)
class Config:
    label: str
    algorithm: str
    window_size: int
    options: dict[str, Any] = field(default_factory=dict)
    flags: FlagPolicy = field(default_factory=FlagPolicy)


# the test bench's temperatures, which climb as the pump and its water warm up (SKAB's README)
THERMAL = ("Temperature", "Thermocouple")
# every configuration reported; the headline is chosen on the selection files (below)
CONFIGS = (
    Config("zscore (defaults), window 16", "zscore", 16),
    Config("mahalanobis (defaults: point, frozen, λ=0.1), window 16", "mahalanobis", 16),
    Config("mahalanobis, window mean (smooth), window 16", "mahalanobis", 16, {"smooth": True}),
    Config("mahalanobis, adapting α=0.002, window 16", "mahalanobis", 16, {"alpha": 0.002}),
    Config("mahalanobis, recent 4, window 16", "mahalanobis", 16, {"recent": 4}),
    *(Config(f"mahalanobis, thermal signals tracked, recent {r}, window 16", "mahalanobis", 16,
             {"recent": r, "track": list(THERMAL)}) for r in (1, 2, 4, 8)),
    # the same with a flag policy (streams/decision.py): fewer flips of the flag
    *(Config(f"mahalanobis, thermal signals tracked, recent 4, window 16, --min-run {n} "
             "--exit-margin 0.1", "mahalanobis", 16, {"recent": 4, "track": list(THERMAL)},
             FlagPolicy(enter_points=n, exit_margin=0.1)) for n in (2, 3)),
)
HEADLINE_SENSITIVITY = 70  # the default
SELECTION_MAX_FAR = 15.0  # the target, applied to the selection files


def choose_headline(results: dict[tuple[int, int], list[tuple[str, Confusion]]]) -> int:
    """The configuration reported as the headline, chosen on the selection files only: at
    the default sensitivity, the best F1 among those whose false-alarm rate there is within
    :data:`SELECTION_MAX_FAR` (else the best F1)."""
    def on_selection(ci: int) -> Confusion:
        return pooled(c for n, c in results[(ci, HEADLINE_SENSITIVITY)]
                      if n.startswith(SELECTION))
    candidates = [ci for ci in range(len(CONFIGS)) if (ci, HEADLINE_SENSITIVITY) in results]
    within = [ci for ci in candidates if on_selection(ci).far <= SELECTION_MAX_FAR]
    return max(within or candidates, key=lambda ci: on_selection(ci).f1)


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
            cps = np.array([float(r[header.index("changepoint")]) for r in body]) > 0.5
            test_cps = tuple(int(t) for t in ts[TRAIN_ROWS:][cps[TRAIN_ROWS:]])
            files.append(SkabFile(f"{folder}/{path.name}", signals, ts, rows, labels, test_cps))
    if len(files) != 34:
        raise SystemExit(f"expected SKAB's 34 labelled files under {data}, found {len(files)}")
    return files


def run_file(f: SkabFile, cfg: Config,
             sensitivity: int) -> tuple[Confusion, ChangePoints, int, float]:
    """Fit on the first 400 rows, stream the file through AssetScorer; the test part's
    confusion and change points (true ones, flips of the prediction)."""
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
    cps = ChangePoints(f.changepoints, flips_of(f.ts_ms[TRAIN_ROWS:], predicted[TRAIN_ROWS:]))
    return c, cps, len(f.rows), elapsed


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


def headline_summary(results: dict[tuple[int, int], list[tuple[str, Confusion]]],
                     nab: dict[tuple[int, int], NabScores], headline: int,
                     leaderboard: dict) -> str:
    """The headline's figures against the issue's target and the leaderboard's best."""
    key = (headline, HEADLINE_SENSITIVITY)
    p = pooled(c for _, c in results[key])
    sel = pooled(c for n, c in results[key] if n.startswith(SELECTION))
    rest = pooled(c for n, c in results[key] if not n.startswith(SELECTION))
    v = nab[key]
    met = p.f1 >= 0.80 and p.far <= 15.0
    best_f1 = max(r[0] for n, r in leaderboard["outlier_detection"]["rows"].items()
                  if n != "Perfect detector")
    cps = {n: r for n, r in leaderboard["changepoint_detection"]["rows"].items()
           if n != "Perfect detector"}
    best_nab = [max(r[i] for r in cps.values()) for i in range(3)]
    return "\n".join([
        "## Where this lands, and why",
        "",
        f"**The target (F1 ≥ 0.80 with FAR ≤ 15 % at the default sensitivity, online, one "
        f"setting for all files) is {'met' if met else 'not met'}**: the headline, "
        f"{CONFIGS[headline].label}, gives F1 {p.f1:.3f}, FAR {p.far:.2f} %, MAR {p.mar:.2f} % "
        f"on all 34 files (selection {sel.f1:.3f} / {sel.far:.1f} % / {sel.mar:.1f} %, check "
        f"{rest.f1:.3f} / {rest.far:.1f} % / {rest.mar:.1f} %); the leaderboard's best F1 is "
        f"{best_f1}. Its change-point score is NAB {v.standard:.2f} / {v.low_fp:.2f} / "
        f"{v.low_fn:.2f} (standard / LowFP / LowFN; {v.missed} missed, {v.false_positives} "
        f"false), the leaderboard's best on each profile {best_nab[0]} / {best_nab[1]} / "
        f"{best_nab[2]}.",
    ])


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
    if HEADLINE_SENSITIVITY not in sensitivities:
        raise SystemExit(f"--sensitivities must include the default, {HEADLINE_SENSITIVITY}: "
                         "the headline is chosen and reported there")
    files = load(args.data)
    leaderboard = json.loads((args.data / "leaderboard.json").read_text())

    results: dict[tuple[int, int], list[tuple[str, Confusion]]] = {}
    nab: dict[tuple[int, int], NabScores] = {}
    us: dict[int, float] = {}
    for ci, cfg in enumerate(CONFIGS):
        for s in sensitivities:
            parts, cps, npts, secs = [], [], 0, 0.0
            for f in files:
                c, cp, n, t = run_file(f, cfg, s)
                parts.append((f.name, c))
                cps.append(cp)
                npts += n
                secs += t
            results[(ci, s)] = parts
            nab[(ci, s)] = nab_scores(cps, CHANGEPOINT_WINDOW_MS)
            us[ci] = secs / npts * 1e6
            p = pooled(c for _, c in parts)
            print(f"{cfg.label} s={s}: F1={p.f1:.3f} FAR={p.far:.2f} MAR={p.mar:.2f} "
                  f"NAB={nab[(ci, s)].standard:.2f}", flush=True)
    costs = [cost(a) for a in ("zscore", "mahalanobis")]
    costs.append(cost("mahalanobis", n_signals=8))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    headline = choose_headline(results)
    args.out.write_text(report(args, files, sensitivities, results, nab, us, costs,
                               leaderboard, headline))
    print(f"wrote {args.out}")
    return 0


def report(
    args: argparse.Namespace,
    files: list[SkabFile],
    sensitivities: list[int],
    results: dict[tuple[int, int], list[tuple[str, Confusion]]],
    nab: dict[tuple[int, int], NabScores],
    us: dict[int, float],
    costs: list[dict],
    leaderboard: dict,
    headline: int,
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
            mark = " **(headline)**" if (ci, s) == (headline, HEADLINE_SENSITIVITY) else ""
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
    n_cps = sum(len(f.changepoints) for f in files)
    out += [
        "",
        "## Change points (SKAB's NAB-style score, `streams/changepoint_score.py`)",
        "",
        "The predicted change points are the flips of the outlier prediction above (and the",
        "first test row if it is flagged), scored against the "
        f"{n_cps} true change points of the test parts with 60 s windows to their right.",
        "",
        "| detector | sensitivity | NAB standard | NAB LowFP | NAB LowFN | missed CPs | FPs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for ci, cfg in enumerate(CONFIGS):
        for s in sensitivities:
            v = nab[(ci, s)]
            mark = " **(headline)**" if (ci, s) == (headline, HEADLINE_SENSITIVITY) else ""
            out.append(f"| {cfg.label}{mark} | {s} | {v.standard:.2f} | {v.low_fp:.2f} | "
                       f"{v.low_fn:.2f} | {v.missed} | {v.false_positives} |")
    out += [
        "",
        "Published (SKAB README, change-point detection; offline, batch methods):",
        "",
        "| algorithm | NAB standard | NAB LowFP | NAB LowFN | missed CPs | FPs |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, row in leaderboard["changepoint_detection"]["rows"].items():
        out.append("| " + name + " | " + " | ".join("–" if v is None else str(v) for v in row)
                   + " |")
    cfg = CONFIGS[headline]
    out += [
        "",
        f"## Per file: {cfg.label}, sensitivity {HEADLINE_SENSITIVITY}",
        "",
        "| file | test rows | anomalous | F1 | FAR % | MAR % |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, c in results[(headline, HEADLINE_SENSITIVITY)]:
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
    out += ["", headline_summary(results, nab, headline, leaderboard), "", FINDINGS, ""]
    return "\n".join(out)


FINDINGS = """The headline is the Mahalanobis detector plus model options, one of which is
knowledge of the bench: `track` names its two temperatures (`Temperature`, `Thermocouple`),
which are then scored on their change over the window rather than on their level; `recent: 4`
scores each signal's mean over the last 4 points; and a flag policy (`--min-run 2
--exit-margin 0.1`) keeps one fault one flagged run. The detector at its defaults, knowing
nothing of the bench, is the `mahalanobis (defaults …)` row: F1 0.742, FAR 34.4 %, NAB −8.2
(it flaps: 1,343 false change points).

## Why

Measured with a frozen model, per file: about four fifths of the defaults' false alarms
come *after* the anomalous segment, where SKAB labels the rows normal again but the testbed
has not returned to its training state, and the rest are slow temperature drift before the
fault; `Temperature` and `Thermocouple` carry ~75 % of the sum of squared z-scores on those
false alarms. A model fitted on 400 rows (≈ 7 minutes) has never seen the temperatures the
loop reaches as it warms up. Scored on their change, the temperatures still flag a jump but
not a warm-up; the pump's faults show in flow, pressure, current and vibration, which keep
their level. The 4-point mean then buys back the recall: a lasting fault stands out of the
noise by √4 while the window still reacts within 4 s. And a run entered after 2 points
and left only 0.1 below the threshold flips the flag less often: each flip outside a
change point's window is a false positive of the change-point score.

How it was chosen: by `choose_headline` in this script, on the 16 `valve1` files only (the
selection column): at the default sensitivity, the best F1 among the configurations whose
false-alarm rate there is within 15 %. The tracked configurations with recent 1, 2, 4 and 8
points and recent 4 with two flag policies were the candidates that mattered (recent 8 is at
15.7 % there). The other 18 files are the check column: there the false-alarm rate is above
the target, the pooled one below it. Which signals to track is not chosen on data: they are
the bench's temperatures, by their names, as a user would declare the signals of a machine
that follow its operating conditions.

Also tried, all through this script's code path or its numpy equivalent, on the selection
files: **smoothing** over the whole window (more false alarms than missed ones saved);
**slow online adaptation** of the reference (α = 0.003–0.03: lower FAR, higher MAR, and the
protection of flagged points locks the post-fault state in); **shrinkage** λ 0.02–0.5 (little
difference; 0.1 kept); **a drift-aware covariance** (lag differences: no gain); **choosing the
tracked signals automatically** from training (a signal whose first differences are small
against its spread, or whose training trend is large; in a numpy prototype): at best F1 0.80
with FAR 24 % — the
temperatures are not always the smoothest or most trending signals in 400 rows.

The trade-off of tracking a signal: a slow rise of a tracked temperature (an overheating
bearing) is not an anomaly to this detector, only a jump is. Where the level itself matters,
give it a limit of its own (a second inference on that signal, not tracked). No per-file
tuning; one configuration for all files.
"""


if __name__ == "__main__":
    raise SystemExit(main())
