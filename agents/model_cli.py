"""``assetwatch model``: train models from files, list and show them, evaluate them on labels.

The directory store (``--models``, env ``ASSETWATCH_MODELS_DIR``) always holds the artifacts
and their records. With ``--broker`` (env ``ASSETWATCH_BROKER``) every record is also published
to the registry topic ``<prefix>.models``, and ``list``/``show`` read the registry. Without a
broker no embedded one is started: it would be empty and gone when the command ends.

Errors a user can cause end in one line ``assetwatch: error: ...`` on stderr, exit status 2.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np
import orjson

from agents.broker import BrokerError
from agents.cli_support import CliUserError, on_broker, user_errors
from agents.model_store import ModelRecord, ModelStore, ModelStoreError
from agents.registry import Registry
from agents.settings import Settings
from streams.calibration import DEFAULT_SENSITIVITY
from streams.codec import format_ts
from streams.decision import FlagPolicy
from streams.detectors import ALGORITHMS
from streams.evaluation import confusion
from streams.labelled_scoring import sweep as labelled_sweep
from streams.lifecycle import Lifecycle, ModelStatus
from streams.model import FILL_METHODS, Model
from streams.quality import QualityReport, format_table
from streams.records import Reading
from streams.training import (
    HOLDOUT_FRACTION,
    Table,
    TimeRange,
    TrainingError,
    TrainingResult,
    TrainingSpec,
    parse_ts,
    read_table,
    train,
)

F = TypeVar("F", bound=Callable[..., Any])
_FAR_MIN = -(2**63)
_FAR_MAX = 2**63 - 1
#: the errors a user can cause end in one line, exit 2
_user_errors = user_errors(TrainingError, ModelStoreError, BrokerError, ValueError, OSError)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _common(fn: F) -> F:
    fn = click.option("--models", "models_dir", type=click.Path(file_okay=False, path_type=Path),
                      default=None,
                      help="Model store directory (env ASSETWATCH_MODELS_DIR, default var/models).")(fn)
    fn = click.option("--topic-prefix", default=None,
                      help="Prefix of the topics; the registry is <prefix>.models (default assetwatch).")(fn)
    return fn


def _broker_option(fn: F) -> F:
    return click.option(
        "--broker", metavar="HOST:PORT", default=None,
        help="Kafka bootstrap address (env ASSETWATCH_BROKER): also use the registry topic. "
             "Default: the directory store alone (no embedded broker is started).",
    )(fn)


def _settings(broker: str | None, models_dir: Path | None, topic_prefix: str | None) -> Settings:
    return Settings.from_env(os.environ, broker=broker, models_dir=models_dir, topic_prefix=topic_prefix)


def _registry(settings: Settings) -> contextlib.AbstractContextManager[Registry | None]:
    """The registry when a broker is configured, else ``None`` (the directory store alone)."""
    if not settings.broker:
        return contextlib.nullcontext()
    return on_broker(settings, lambda kafka: Registry(kafka, settings))


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()


def _ranges(froms: Sequence[str], tos: Sequence[str]) -> tuple[TimeRange, ...]:
    """Pair ``--from`` and ``--to`` in order; one bound alone leaves the other end open."""
    if not froms and not tos:
        return ()
    pairs: list[tuple[str | None, str | None]]
    if len(froms) == len(tos):
        pairs = list(zip(froms, tos, strict=True))
    elif len(froms) == 1 and not tos:
        pairs = [(froms[0], None)]
    elif len(tos) == 1 and not froms:
        pairs = [(None, tos[0])]
    else:
        raise TrainingError(f"give as many --from as --to ({len(froms)} and {len(tos)} given)")
    return tuple(
        TimeRange(_FAR_MIN if a is None else parse_ts(a), _FAR_MAX if b is None else parse_ts(b))
        for a, b in pairs
    )


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliUserError(f"--detector-options is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliUserError("--detector-options must be a JSON object")
    return value


@click.group("model")
def model_group() -> None:
    """Train models from files, list and show them, evaluate them on labelled data."""


class _Progress:
    """A progress bar over the bytes of the training file, on stderr (hidden when not a tty)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.bar: Any = None
        self.done = 0
        if enabled:
            self.bar = click.progressbar(length=max(path.stat().st_size, 1), label=f"reading {path.name}",
                                         file=sys.stderr, show_eta=True)
            self.bar.__enter__()

    def __call__(self, done: int) -> None:
        if self.bar is not None and done > self.done:
            self.bar.update(done - self.done)
            self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@model_group.command("train")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model id.")
@click.option("--signals", default=None, help="Comma-separated signals (default: every numeric column).")
@click.option("--exclude", default=None, help="Comma-separated columns never used as signals (e.g. labels).")
@click.option("--timestamp-column", default=None,
              help="Timestamp column (default: timestamp/ts/time/datetime, else the first column).")
@click.option("--asset-column", default=None,
              help="Column of asset ids in a file of several assets (default: asset_id, if there "
                   "is one). One model is trained on all the assets, each asset's rows kept apart.")
@click.option("--interval-ms", type=click.IntRange(min=1), default=None,
              help="Data interval in ms (default: the median step).")
@click.option("--window", "window_size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Sliding window, in points.")
@click.option("--fill", type=click.Choice(FILL_METHODS), default="previous", show_default=True,
              help="Fill method for missing points.")
@click.option("--algorithm", type=click.Choice(["auto", *sorted(ALGORITHMS)]), default="auto",
              show_default=True)
@click.option("--detector-options", default=None, metavar="JSON",
              help='The detector\'s options as a JSON object, e.g. for --algorithm river '
                   '\'{"estimator": "HalfSpaceTrees", "params": {"n_trees": 10}, '
                   '"scaler": "MinMaxScaler"}\' (docs/detectors.md).')
@click.option("--min-run", type=click.IntRange(min=1), default=1, show_default=True,
              help="Consecutive points at or above the threshold before a run is flagged "
                   "(1: at once; a blip shorter than this is no anomaly).")
@click.option("--exit-margin", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0,
              show_default=True,
              help="Hysteresis: a flagged run goes on while severity ≥ threshold − this margin.")
@click.option("--adopt-after", type=click.IntRange(min=0), default=0, show_default=True,
              help="Adopt a lasting steady change as the asset's new normal after this many "
                   "points of a mostly abnormal episode (0: never; docs/detectors.md).")
@click.option("--from", "froms", multiple=True, metavar="TS",
              help="Start of a training range (ISO-8601 or epoch ms; repeat with --to).")
@click.option("--to", "tos", multiple=True, metavar="TS", help="End (exclusive) of a training range.")
@click.option("--target-far", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="Target false-alarm probability: report the sensitivity meeting it on held-out data.")
@click.option("--json", "as_json", is_flag=True, help="Print the final record as JSON only.")
@_broker_option
@_common
@_user_errors
def train_cmd(
    file: Path, name: str, signals: str | None, exclude: str | None, timestamp_column: str | None,
    asset_column: str | None, interval_ms: int | None, window_size: int, fill: str, algorithm: str,
    froms: tuple[str, ...], tos: tuple[str, ...], target_far: float | None, as_json: bool,
    detector_options: str | None, broker: str | None,
    models_dir: Path | None, topic_prefix: str | None, min_run: int = 1, exit_margin: float = 0.0,
    adopt_after: int = 0,
) -> None:
    """Train model NAME from FILE (CSV or JSON) into the model store."""
    settings = _settings(broker, models_dir, topic_prefix)
    store = ModelStore(settings.models_dir)
    spec = TrainingSpec(
        name=name, signals=_split(signals), exclude=_split(exclude), interval_ms=interval_ms,
        window_size=window_size, fill=fill, algorithm=algorithm, ranges=_ranges(froms, tos),
        target_far=target_far, timestamp_column=timestamp_column, asset_column=asset_column,
        detector_options=_json_object(detector_options),
        flags=FlagPolicy(enter_points=min_run, exit_margin=exit_margin,
                         adopt_points=adopt_after),
    )
    say = (lambda _line: None) if as_json else click.echo
    with _registry(settings) as registry:
        def emit(rec: ModelRecord, note: str = "") -> None:
            store.save_record(rec)
            if registry is not None:
                registry.publish(rec)
            say(f"model {rec.key}: {rec.status.value}{note}")

        spec = replace(spec, version=store.next_version(name))
        record = ModelRecord(name, spec.version, Lifecycle.created(_now_ms()), spec=spec.to_dict(),
                             source=file.name, window_size=spec.window_size, target_far=target_far)
        emit(record)
        record = record.moved(ModelStatus.RUNNING, _now_ms())
        emit(record, f" (reading {file.name})")
        progress = _Progress(file, enabled=not as_json and sys.stderr.isatty())
        try:
            result = train(read_table(file, spec.timestamp_column, progress, spec.asset_column), spec)
        except Exception as exc:
            progress.close()
            reason = exc.reason if isinstance(exc, TrainingError) else f"{type(exc).__name__}: {exc}"
            quality = exc.quality if isinstance(exc, TrainingError) else None
            record = record.moved(ModelStatus.FAILED, _now_ms(), reason, quality=quality)
            emit(record, f": {reason}")
            if quality is not None:
                say(_quality_text(quality))
            if as_json:
                click.echo(orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2).decode())
            if isinstance(exc, TrainingError | UnicodeDecodeError | OSError):
                raise CliUserError(f"model {record.key} failed: {reason}") from exc
            raise
        progress.close()
        digest = store.save(result.model)
        record = _completed(record, result, digest)
        say(_quality_text(result.quality))
        say(_model_text(record))
        emit(record, f" ({store.path(name, spec.version)}, sha256 {digest[:12]}…)")
        if registry is not None:
            say(f"registry: published {record.key} to {registry.topic}")
        if as_json:
            click.echo(orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2).decode())


def _completed(record: ModelRecord, result: TrainingResult, digest: str) -> ModelRecord:
    m = result.model
    return record.moved(
        ModelStatus.COMPLETED, _now_ms(),
        quality=result.quality, content_hash=digest, signals=m.signals, interval_ms=m.interval_ms,
        window_size=m.window_size, algorithm=m.detector.kind, calibration=result.calibration_summary(),
        target_far=m.target_far, sensitivity=m.sensitivity, achieved_far=m.heldout_far,
        training_far=result.training_far,
    )


def _quality_text(q: QualityReport) -> str:
    of = f" of {q.assets} asset{'s' * (q.assets != 1)}, each trained apart" if q.assets else ""
    lines = [f"data: {q.rows} rows{of}; interval {q.interval_ms} ms; {q.slots} slots, "
             f"{q.dropped} left out; {q.duplicate_timestamps} duplicate and "
             f"{q.non_increasing_timestamps} non-increasing timestamps", format_table(q)]
    lines += [f"warning: {w}" for w in q.warnings()]
    return "\n".join(lines)


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{100 * p:.3g}%"


def _model_text(r: ModelRecord) -> str:
    lines = [f"model: {r.algorithm} on {len(r.signals)} signal(s) ({', '.join(r.signals)}), "
             f"window {r.window_size}, interval {r.interval_ms} ms, fill {r.spec.get('fill', '?')}"]
    cal = r.calibration
    if cal:
        lines.append(
            f"calibration: {cal['training_points']} training points; score median "
            f"{cal['score_median']:.3g}, 90th percentile {cal['score_q90']:.3g}, tail scale "
            f"{cal['tail_scale']:.3g}; expected false alarms on the training data at sensitivity "
            f"{cal['default_sensitivity']}: {_pct(cal['expected_far_at_default'])}"
        )
    if r.target_far is not None:
        lines.append(
            f"target false-alarm probability {r.target_far:g}: sensitivity {r.sensitivity} meets it "
            f"on the held-out last {HOLDOUT_FRACTION:.0%} (achieved {_pct(r.achieved_far)})"
        )
    return "\n".join(lines)


@model_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@_broker_option
@_common
@_user_errors
def list_cmd(as_json: bool, broker: str | None, models_dir: Path | None, topic_prefix: str | None) -> None:
    """List every model version: from the registry with --broker, else from the store."""
    settings = _settings(broker, models_dir, topic_prefix)
    records = _all_records(settings)
    if as_json:
        click.echo(orjson.dumps([r.to_dict() for r in records], option=orjson.OPT_INDENT_2).decode())
        return
    if not records:
        click.echo("no models")
        return
    header = ("model", "version", "status", "algorithm", "signals", "window", "interval", "reason")
    rows = [(r.model_id, str(r.version), r.status.value, r.algorithm or "-", str(len(r.signals) or "-"),
             str(r.window_size or "-"), f"{r.interval_ms} ms" if r.interval_ms else "-", r.reason or "")
            for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _all_records(settings: Settings) -> list[ModelRecord]:
    with _registry(settings) as registry:
        if registry is None:
            return ModelStore(settings.models_dir).records()
        return sorted(registry.read().values(), key=lambda r: (r.model_id, r.version))


@model_group.command("show")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Version (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@_broker_option
@_common
@_user_errors
def show_cmd(name: str, version: int | None, as_json: bool, broker: str | None,
             models_dir: Path | None, topic_prefix: str | None) -> None:
    """Show a model version's record: status, spec, quality report, calibration."""
    settings = _settings(broker, models_dir, topic_prefix)
    mine = [r for r in _all_records(settings) if r.model_id == name]
    if version is not None:
        mine = [r for r in mine if r.version == version]
    if not mine:
        which = f" v{version}" if version is not None else ""
        raise ModelStoreError(f"no record of model {name!r}{which}")
    record = max(mine, key=lambda r: r.version)
    if as_json:
        click.echo(orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    lc = record.lifecycle
    click.echo(f"model {record.key}: {record.status.value}" + (f": {record.reason}" if record.reason else ""))
    click.echo("history: " + " → ".join(f"{s.value} {format_ts(at)}" for s, at in lc.history))
    click.echo(f"source: {record.source or '-'}; content sha256: {record.content_hash or '-'}")
    spec = record.spec
    click.echo("spec: " + ", ".join(f"{k}={v}" for k, v in spec.items() if v not in (None, [], ())))
    if record.quality is not None:
        click.echo(_quality_text(record.quality))
    if record.status is ModelStatus.COMPLETED:
        click.echo(_model_text(record))


@model_group.command("evaluate")
@click.argument("name")
@click.argument("labelled_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label-column", default="anomaly", show_default=True,
              help="Column of labels (1/true: anomalous).")
@click.option("--sensitivity", type=click.IntRange(1, 100), default=None,
              help="Sensitivity 1-100 (default: the model's target-FAR sensitivity, else 70).")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Version (default: the latest).")
@click.option("--timestamp-column", default=None, help="Timestamp column (default as in train).")
@click.option("--asset-column", default=None,
              help="Column of asset ids (default as in train): each asset scored on its own.")
@click.option("--sweep", default=None, metavar="S1,S2,…",
              help="Also report these sensitivities (e.g. 50,60,70,80,90): one scoring pass "
                   "decides them all unless the detector adapts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_common
@_user_errors
def evaluate_cmd(name: str, labelled_file: Path, label_column: str, sensitivity: int | None,
                 version: int | None, timestamp_column: str | None, asset_column: str | None,
                 sweep: str | None, as_json: bool, models_dir: Path | None,
                 topic_prefix: str | None) -> None:
    """Score LABELLED_FILE with model NAME as a stream would (slots, fill, window, detector,
    calibration, flag policy); report precision, recall, F1, FAR, MAR."""
    settings = _settings(None, models_dir, topic_prefix)
    store = ModelStore(settings.models_dir)
    model = store.load(name, version)
    record = store.load_record(name, model.version)
    s = sensitivity or model.sensitivity or DEFAULT_SENSITIVITY
    table = read_table(labelled_file, timestamp_column, asset_column=asset_column)
    if table.rows == 0:
        raise TrainingError("empty file: no data rows")
    labels_raw = table.column(label_column)
    if np.isnan(labels_raw).any():
        raise TrainingError(f"label column {label_column!r} has missing or non-numeric values")
    swept = _sensitivities(sweep) if sweep else []
    sensitivities = [s, *(x for x in swept if x != s)]
    predicted, kinds, passes = _predict(model, table, sensitivities)
    labels = labels_raw > 0.5
    c = confusion(labels, predicted[s])
    expected = record.expected_far(s) if record is not None else None
    result: dict[str, Any] = {
        "model_id": model.model_id, "version": model.version, "sensitivity": s,
        "points": table.rows, "scored": kinds.get("scored", 0),
        "tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn,
        "precision": c.precision, "recall": c.recall, "f1": c.f1, "far_pct": c.far, "mar_pct": c.mar,
        "expected_training_far_pct": None if expected is None else 100 * expected,
    }
    if swept:
        result["sweep"] = [
            {"sensitivity": x, "f1": cx.f1, "precision": cx.precision, "recall": cx.recall,
             "far_pct": cx.far, "mar_pct": cx.mar, "tp": cx.tp, "fp": cx.fp, "fn": cx.fn}
            for x in sorted(set(swept)) for cx in [confusion(labels, predicted[x])]]
        result["scoring_passes"] = passes
    if as_json:
        click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    others = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()) if k != "scored") or "none other"
    click.echo(f"model {model.model_id}/{model.version} on {labelled_file.name} at sensitivity {s}: "
               f"{table.rows} points, {result['scored']} scored ({others})")
    click.echo(f"TP {c.tp}  FP {c.fp}  TN {c.tn}  FN {c.fn}")
    click.echo(f"precision {c.precision:.3f}  recall {c.recall:.3f}  F1 {c.f1:.3f}  "
               f"FAR {c.far:.2f}%  MAR {c.mar:.2f}%")
    if expected is None:
        click.echo("expected false-alarm rate on the training data: unknown (no training record)")
    else:
        click.echo(f"expected false-alarm rate on the training data: {100 * expected:.2f}%")
    if swept:
        how = "one scoring pass" if passes == 1 else f"{passes} scoring passes (the detector adapts)"
        click.echo(f"sensitivity sweep ({how}):")
        for item in result["sweep"]:
            click.echo(f"  {item['sensitivity']:>3}: F1 {item['f1']:.3f}  FAR {item['far_pct']:.2f}%"
                       f"  MAR {item['mar_pct']:.2f}%")


def _sensitivities(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TrainingError(f"--sweep takes sensitivities 1-100 separated by commas, got {text!r}"
                            ) from None
    if not values or any(not 1 <= v <= 100 for v in values):
        raise TrainingError(f"--sweep takes sensitivities 1-100 separated by commas, got {text!r}")
    return values


def _predict(model: Model, table: Table, sensitivities: Sequence[int],
             ) -> tuple[dict[int, np.ndarray], dict[str, int], int]:
    """Score the table's rows through the stream's path (streams/labelled_scoring.py: slots,
    fill, gaps, window, detector, calibration, flag policy), each asset with its own state
    when the table has an asset column; each sensitivity's prediction per row, the outcome
    counts and how many scoring passes it took.

    A row is predicted anomalous when its point was flagged; points not scored (warming up,
    duplicate timestamps, incomplete, in a gap) are predicted normal.
    """
    for s in model.signals:
        table.column(s)  # an unknown signal raises with the columns listed
    cols = [table.columns.index(s) for s in model.signals]
    order = np.argsort(table.ts_ms, kind="stable")
    assets = ["file"] * table.rows if table.assets is None else [str(a) for a in table.assets]
    readings = []
    for i in order.tolist():
        row = table.values[i, cols].tolist()
        signals = {s: float(v) for s, v in zip(model.signals, row, strict=True) if v == v}
        readings.append(Reading(assets[i], int(table.ts_ms[i]), signals))
    flagged, first, passes = labelled_sweep(model, readings, sensitivities)
    keys = list(zip(assets, table.ts_ms.tolist(), strict=True))
    predicted = {s: np.fromiter((k in hits for k in keys), dtype=bool, count=table.rows)
                 for s, hits in flagged.items()}
    return predicted, first.kinds, passes
