"""Every detector family on the generated evaluation suite, through the real scoring path.

For each series of :mod:`streams.evaluation_suite`: fit a model on its clean training part
(``fit_model``, as ``train()`` does), then stream the rest point by point through
``AssetScorer.process`` (score before learn, flagged points not learnt; missing points are
not sent), and predict "anomalous" when the scorer raises an anomaly at the sensitivity.
Point-wise F1, FAR and MAR (SKAB's formulas, :mod:`streams.evaluation`) are pooled over the
scored test points of each split, with false alarms per 10,000 points and the share of
injected events of each kind that got at least one flagged point in their labelled part
(events after a level shift left out: a model still alarming on the shift would be credited).

    .venv/bin/python -m benchmarks.detection_suite [--quick] [--sensitivity 70]

Prints a Markdown table. ``--quick``: 2 seeds per split, 2,000 points per series (500 for
training); default: 10 seeds per split, 4,000 points (1,000 for training).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streams.calibration import DEFAULT_SENSITIVITY
from streams.decision import FlagPolicy
from streams.evaluation import Confusion, confusion, pooled
from streams.evaluation_suite import (
    CHOOSING_SEEDS,
    EVENT_KINDS,
    HELD_OUT_SEEDS,
    Series,
    suite,
)
from streams.inference import InferenceConfig
from streams.model import ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer

INTERVAL_MS = 1_000


@dataclass(frozen=True, slots=True)
class Family:
    label: str
    algorithm: str
    options: dict[str, Any] = field(default_factory=dict)


FAMILIES = (
    Family("zscore", "zscore"),
    Family("mahalanobis", "mahalanobis"),
    Family("auto", "auto"),
    Family("river HalfSpaceTrees", "river", {"estimator": "HalfSpaceTrees"}),
)


@dataclass(frozen=True, slots=True)
class Result:
    confusion: Confusion
    #: per event kind: (events with a flagged labelled point, labelled events), events after a
    #: level shift left out
    hits: dict[str, tuple[int, int]]
    points: int
    seconds: float
    #: false alarms after a level shift's labelled part (the frozen model meets a new normal)
    fp_after_shift: int = 0


def run_series(s: Series, family: Family, sensitivity: int, window: int = 16,
               flags: FlagPolicy | None = None) -> Result:
    """Fit on the training part, stream the rest through AssetScorer; test-part results."""
    options = dict(family.options)
    if family.algorithm == "river":
        options.setdefault("warmup", min(1_000, s.train_points))
    params = ModelParams(
        model_id="suite", signals=s.signals, window_size=window, interval_ms=INTERVAL_MS,
        algorithm=family.algorithm, detector_options=options, flags=flags or FlagPolicy(),
    )
    model = fit_model(s.values[: s.train_points], params)
    scorer = AssetScorer(
        InferenceConfig("suite", "suite", "suite", sensitivity=sensitivity), model
    )
    state = scorer.new_state()
    predicted = np.zeros(len(s.values), dtype=bool)
    t0 = time.perf_counter()
    for i, row in enumerate(s.values):
        if s.missing[i]:
            continue  # a gap: no reading arrives
        out = scorer.process(
            state, Reading("a", i * INTERVAL_MS, dict(zip(s.signals, map(float, row), strict=True)))
        )
        predicted[i] = out.anomaly is not None
    seconds = time.perf_counter() - t0
    test = np.arange(len(s.values)) >= s.train_points
    scored = test & ~s.missing
    hits: dict[str, tuple[int, int]] = {}
    # an event after a level shift is left out: a model that has not recovered from the shift
    # would be credited with finding it
    shift_at = min((e.start for e in s.events if e.kind == "level_shift"), default=len(s.values))
    for e in s.events:
        if e.labelled == 0 or (e.kind != "level_shift" and e.start > shift_at):
            continue
        hit = int(predicted[e.start:e.start + e.labelled].any())
        h, n = hits.get(e.kind, (0, 0))
        hits[e.kind] = (h + hit, n + 1)
    after_shift = np.zeros(len(s.values), dtype=bool)
    for e in s.events:
        if e.kind == "level_shift":
            after_shift[e.start + e.labelled:] = True
    fp_after = int((predicted & ~s.labels & scored & after_shift).sum())
    return Result(confusion(s.labels[scored], predicted[scored]), hits, int(scored.sum()), seconds,
                  fp_after)


def skab_series(data: Path) -> list[Series]:
    """SKAB's 34 labelled files as series of this suite (no injected events; the first 400
    rows for training, as benchmarks/skab_eval.py does)."""
    from benchmarks.skab_eval import TRAIN_ROWS, load

    return [Series(name=f.name, kind="multivariate", seed=-1, signals=f.signals, values=f.rows,
                   clean=f.rows, labels=f.labels, missing=np.zeros(len(f.rows), dtype=bool),
                   events=(), train_points=TRAIN_ROWS) for f in load(data)]


def combine(results: Sequence[Result]) -> Result:
    hits: dict[str, tuple[int, int]] = {}
    for r in results:
        for k, (h, n) in r.hits.items():
            h0, n0 = hits.get(k, (0, 0))
            hits[k] = (h0 + h, n0 + n)
    return Result(
        pooled(r.confusion for r in results), hits, sum(r.points for r in results),
        sum(r.seconds for r in results), sum(r.fp_after_shift for r in results),
    )


def table(rows: Sequence[tuple[str, str, Result]]) -> str:
    kinds = [k for k in EVENT_KINDS if k != "missing"]
    head = ("| family | split | F1 | FAR % | MAR % | false alarms / 10k points | "
            "false alarms after a level shift | µs / point | " + " | ".join(kinds) + " |")
    out = [head, "|---|---|--:|--:|--:|--:|--:|--:|" + "--:|" * len(kinds)]
    for fam, split, r in rows:
        c = r.confusion
        fa = 10_000 * c.fp / r.points if r.points else 0.0
        us = 1e6 * r.seconds / r.points if r.points else 0.0
        found = " | ".join(
            f"{r.hits[k][0]}/{r.hits[k][1]}" if k in r.hits else "–" for k in kinds
        )
        share = f"{100 * r.fp_after_shift / c.fp:.0f} %" if c.fp else "–"
        out.append(f"| {fam} | {split} | {c.f1:.3f} | {c.far:.2f} | {c.mar:.2f} | {fa:.0f} | "
                   f"{share} | {us:.0f} | {found} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds per split, 2,000 points")
    ap.add_argument("--sensitivity", type=int, default=DEFAULT_SENSITIVITY)
    ap.add_argument("--min-run", type=int, default=1,
                    help="flag policy: consecutive points at/above the threshold before a run")
    ap.add_argument("--exit-margin", type=float, default=0.0,
                    help="flag policy: hysteresis margin in severity (streams/decision.py)")
    ap.add_argument("--adopt-after", type=int, default=0,
                    help="flag policy: abnormal points in a row before a steady new level is "
                         "adopted (0: never; streams/adoption.py)")
    ap.add_argument("--families", default=",".join(f.label for f in FAMILIES),
                    help="comma-separated labels of FAMILIES to run")
    ap.add_argument("--by-kind", action="store_true",
                    help="report univariate and four-signal series apart (how auto's rule is "
                         "measured)")
    ap.add_argument("--skab", type=Path, nargs="?", const=Path("../shared/data/skab"),
                    default=None, metavar="DIR",
                    help="also score SKAB's 34 labelled files (read in place) the same way: "
                         "fit on each file's first 400 rows")
    args = ap.parse_args(argv)
    n_seeds, points, train = (2, 2_000, 500) if args.quick else (10, 4_000, 1_000)
    chosen = {x.strip() for x in args.families.split(",")}
    families = [f for f in FAMILIES if f.label in chosen]
    splits = {
        "choosing": suite(CHOOSING_SEEDS[:n_seeds], points, train),
        "held-out": suite(HELD_OUT_SEEDS[:n_seeds], points, train),
    }
    if args.by_kind:
        splits = {f"{name} {kind}": [x for x in series if x.kind == kind]
                  for name, series in splits.items() for kind in ("univariate", "multivariate")}
    if args.skab is not None:
        splits["SKAB"] = skab_series(args.skab)
    rows = []
    for fam in families:
        for split, series in splits.items():
            flags = FlagPolicy(enter_points=args.min_run, exit_margin=args.exit_margin,
                               adopt_points=args.adopt_after)
            r = combine([run_series(s, fam, args.sensitivity, flags=flags) for s in series])
            rows.append((fam.label, split, r))
            print(f"# {fam.label} {split}: F1={r.confusion.f1:.3f}", flush=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(f"`python -m benchmarks.detection_suite{' --quick' if args.quick else ''}`, {now}, "
          f"sensitivity {args.sensitivity}, flag runs: min run {args.min_run}, exit margin "
          f"{args.exit_margin}, adopt after {args.adopt_after}, {n_seeds} seeds per split × "
          "(1 univariate + 1 "
          f"four-signal series) of {points:,} points, the first {train:,} for training; "
          "event columns: events with ≥ 1 flagged point in their labelled part / events, "
          "events after a level shift left out"
          + ("; SKAB: its 34 labelled files, the first 400 rows of each for training."
             if args.skab is not None else "."))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
