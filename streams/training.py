"""Training a model from a historical data set: parse the file, re-sample, fill, fit (SPEC §4).

Pure: the only IO is reading the path (or bytes) it is given; no environment, no clock.

1. **Read** a table: a CSV file (a timestamp column and signal columns, the delimiter
   detected from the header, streamed in chunks with an optional progress callback) or JSON
   in the ``{"signalNames": [...], "data": [{"timestamp": ..., "values": [...]}]}`` form.
   Timestamps are epoch milliseconds or ISO-8601 text (without a zone: UTC). Empty cells,
   ``null``, ``NaN`` and non-finite numbers are missing values.
2. **Prepare** (:func:`prepare`): choose the signals (default: every numeric column), take
   each asset's rows apart when the file has an asset column (one model for all), sort by
   time (the last row of a duplicated timestamp wins), keep the training ranges, re-sample
   each range onto the interval grid (default interval: the median step), fill it exactly as
   the stream fills an asset's points (:func:`_fill`: short runs of missing slots by the
   method, longer ones left as gaps, a missing signal carried from the row before; rows that
   cannot be completed dropped), and report the data quality (:mod:`streams.quality`).
3. **Fit** (:func:`train`): :func:`streams.model.fit_model`, then the expected false-alarm
   rate on the training data at every sensitivity.

Where the data cannot make a model, :class:`TrainingError` says why in one line.

>>> csv = b"ts;a;b\\n" + b"".join(b"%d;%d;%d\\n" % (i * 1000, i % 7, i % 5) for i in range(60))
>>> table = read_csv(csv)
>>> table.columns, table.ts_ms[:2].tolist()
(('a', 'b'), [0, 1000])
>>> result = train(table, TrainingSpec(name="pump", window_size=8))
>>> result.model.signals, result.model.interval_ms, result.model.detector.kind
(('a', 'b'), 1000, 'mahalanobis')
>>> train(table, TrainingSpec(name="pump", signals=("c",)))
Traceback (most recent call last):
...
streams.training.TrainingError: unknown signal 'c' (columns: a, b)
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streams.calibration import DEFAULT_SENSITIVITY, threshold_for
from streams.decision import FlagPolicy
from streams.detectors import ALGORITHMS
from streams.fill import complete_row, fill
from streams.inference import DEFAULT_MAX_FILL_POINTS
from streams.model import FILL_METHODS, Model, ModelParams, fit_model, training_scores
from streams.quality import QualityReport, signal_quality, timestamp_quality

__all__ = [
    "ASSET_NAMES",
    "TIMESTAMP_NAMES",
    "Prepared",
    "Table",
    "TimeRange",
    "TrainingError",
    "TrainingResult",
    "TrainingSpec",
    "detect_delimiter",
    "parse_ts",
    "prepare",
    "read_csv",
    "read_json",
    "read_table",
    "train",
]

#: Column names taken as the timestamp column when none is named (else the first column).
TIMESTAMP_NAMES = ("timestamp", "ts", "time", "datetime")
#: Column names taken as the asset column when none is named (any case): the telemetry's field.
ASSET_NAMES = ("asset_id",)
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})
_DELIMITERS = (",", ";", "\t", "|")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SLOTS_PER_ROW = 100  # a grid this much larger than the data is a wrong interval
HOLDOUT_FRACTION = 0.2

ProgressCallback = Callable[[int], None]


class TrainingError(ValueError):
    """The data cannot make a model; the message says why (and the report, where there is one)."""

    def __init__(self, reason: str, quality: QualityReport | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.quality = quality


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open training range ``[from_ms, to_ms)``."""

    from_ms: int
    to_ms: int

    def __post_init__(self) -> None:
        if self.to_ms <= self.from_ms:
            raise TrainingError(f"empty training range: to ({self.to_ms}) is not after from ({self.from_ms})")

    def to_list(self) -> list[int]:
        return [self.from_ms, self.to_ms]


@dataclass(frozen=True, slots=True)
class TrainingSpec:
    """What a user chooses when training a model from a file."""

    name: str
    signals: tuple[str, ...] = ()  # empty: every numeric column
    exclude: tuple[str, ...] = ()  # columns never taken as signals (e.g. labels)
    interval_ms: int | None = None  # None: the median step of the timestamps
    window_size: int = 16
    fill: str = "previous"
    algorithm: str = "auto"
    ranges: tuple[TimeRange, ...] = ()  # empty: all the data
    target_far: float | None = None
    timestamp_column: str | None = None
    version: int = 1
    asset_column: str | None = None  # None: a column named asset_id, if there is one
    detector_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. river's estimator
    #: how severities become flagged runs (streams/decision.py; default: severity ≥ threshold)
    flags: FlagPolicy = field(default_factory=FlagPolicy)
    #: the longest run of missing slots filled, as an inference's fill limit (its default):
    #: a longer run is a gap, not filled, as the stream leaves it
    max_fill_points: int = DEFAULT_MAX_FILL_POINTS

    def __post_init__(self) -> None:
        if not _MODEL_ID.match(self.name):
            raise TrainingError(
                f"model name {self.name!r} must be 1-128 letters, digits, '.', '_' or '-'"
            )
        if self.fill not in FILL_METHODS:
            raise TrainingError(f"unknown fill method {self.fill!r}; choose one of {', '.join(FILL_METHODS)}")
        if self.algorithm != "auto" and self.algorithm not in ALGORITHMS:
            raise TrainingError(
                f"unknown algorithm {self.algorithm!r}; choose auto, {', '.join(sorted(ALGORITHMS))}"
            )
        if self.window_size < 1:
            raise TrainingError(f"window must be at least 1 point, got {self.window_size}")
        if self.interval_ms is not None and self.interval_ms < 1:
            raise TrainingError(f"data interval must be at least 1 ms, got {self.interval_ms}")
        if self.target_far is not None and not 0.0 < self.target_far < 1.0:
            raise TrainingError(f"target false-alarm probability must be in (0, 1), got {self.target_far}")
        if len(set(self.signals)) != len(self.signals):
            raise TrainingError(f"a signal is named twice in {', '.join(self.signals)}")
        if self.version < 1:
            raise TrainingError(f"version must be at least 1, got {self.version}")
        if self.max_fill_points < 0:
            raise TrainingError(f"max fill points must be ≥ 0, got {self.max_fill_points}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signals": list(self.signals),
            "exclude": list(self.exclude),
            "interval_ms": self.interval_ms,
            "window_size": self.window_size,
            "fill": self.fill,
            "algorithm": self.algorithm,
            "ranges": [r.to_list() for r in self.ranges],
            "target_far": self.target_far,
            "timestamp_column": self.timestamp_column,
            "version": self.version,
            "asset_column": self.asset_column,
            "detector_options": dict(self.detector_options),
            "flags": self.flags.to_dict(),
            "max_fill_points": self.max_fill_points,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingSpec:
        """Rebuild from :meth:`to_dict`'s form.

        >>> spec = TrainingSpec("m", ranges=(TimeRange(0, 10),), target_far=0.01)
        >>> TrainingSpec.from_dict(spec.to_dict()) == spec
        True
        """
        return cls(
            name=str(d["name"]),
            signals=tuple(d.get("signals", ())),
            exclude=tuple(d.get("exclude", ())),
            interval_ms=None if d.get("interval_ms") is None else int(d["interval_ms"]),
            window_size=int(d.get("window_size", 16)),
            fill=str(d.get("fill", "previous")),
            algorithm=str(d.get("algorithm", "auto")),
            ranges=tuple(TimeRange(int(a), int(b)) for a, b in d.get("ranges", ())),
            target_far=None if d.get("target_far") is None else float(d["target_far"]),
            timestamp_column=d.get("timestamp_column"),
            version=int(d.get("version", 1)),
            asset_column=d.get("asset_column"),
            detector_options=dict(d.get("detector_options") or {}),
            flags=FlagPolicy.from_dict(d.get("flags")),
            max_fill_points=int(d.get("max_fill_points", DEFAULT_MAX_FILL_POINTS)),
        )


@dataclass(frozen=True, slots=True)
class Table:
    """A data set as read: timestamps in file order and one float column per candidate signal.

    ``values`` is rows × columns, NaN where a value is missing; ``non_numeric`` names the
    columns that held text that is not a number, with the first such cell. ``assets`` holds
    each row's asset id when the file has an asset column (rows of several assets).
    """

    columns: tuple[str, ...]
    ts_ms: np.ndarray
    values: np.ndarray
    non_numeric: Mapping[str, str] = field(default_factory=dict)
    timestamp_column: str = "timestamp"
    assets: np.ndarray | None = None  # each row's asset id (str), when the file has an asset column
    asset_column: str | None = None

    @property
    def rows(self) -> int:
        return int(self.ts_ms.shape[0])

    def column(self, name: str) -> np.ndarray:
        """One column's values (NaN: missing).

        >>> read_csv(b"t,x\\n0,1.5\\n1,\\n").column("x").tolist()
        [1.5, nan]
        """
        try:
            return np.asarray(self.values[:, self.columns.index(name)])
        except ValueError:
            raise TrainingError(
                f"unknown signal {name!r} (columns: {', '.join(self.columns)})"
            ) from None


def parse_ts(value: Any) -> int:
    """A timestamp as epoch milliseconds: a number (epoch ms) or ISO-8601 text (no zone: UTC).

    >>> parse_ts("2026-01-01T00:00:00Z"), parse_ts("2026-01-01 00:00:01"), parse_ts(5), parse_ts("7")
    (1767225600000, 1767225601000, 5, 7)
    >>> parse_ts("yesterday")
    Traceback (most recent call last):
    ...
    streams.training.TrainingError: timestamp 'yesterday' is neither epoch milliseconds nor ISO-8601
    """
    if isinstance(value, bool):
        raise TrainingError(f"timestamp {value!r} is neither epoch milliseconds nor ISO-8601")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TrainingError(f"timestamp {value!r} is not finite")
        return round(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return int(text) if text.lstrip("+-").isdigit() else round(number)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise TrainingError(f"timestamp {text!r} is neither epoch milliseconds nor ISO-8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def detect_delimiter(header: str) -> str:
    """The delimiter of a CSV header line: the most frequent of ``, ; tab |`` (``,`` if none).

    >>> detect_delimiter("datetime;Current;Voltage"), detect_delimiter("ts,a"), detect_delimiter("a")
    (';', ',', ',')
    """
    counts = [(header.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] > 0 else ","


def _cell(text: str) -> float | None:
    """A cell's float (NaN for missing or non-finite), or None when it is not a number."""
    t = text.strip()
    if t.lower() in _MISSING:
        return math.nan
    try:
        v = float(t)
    except ValueError:
        return None
    return v if math.isfinite(v) else math.nan


def _lines(source: Path | bytes, on_progress: ProgressCallback | None, every: int) -> Iterator[str]:
    """Decoded lines of the source, reporting bytes read every ``every`` lines."""
    done = 0
    if isinstance(source, bytes | bytearray):
        lines: Iterable[bytes] = bytes(source).splitlines(keepends=True)
        for n, raw in enumerate(lines):
            done += len(raw)
            if on_progress is not None and n % every == 0:
                on_progress(done)
            yield raw.decode("utf-8-sig" if n == 0 else "utf-8")
    else:
        with Path(source).open("rb") as fh:
            for n, raw in enumerate(fh):
                done += len(raw)
                if on_progress is not None and n % every == 0:
                    on_progress(done)
                yield raw.decode("utf-8-sig" if n == 0 else "utf-8")
    if on_progress is not None:
        on_progress(done)


def read_csv(
    source: Path | bytes,
    timestamp_column: str | None = None,
    on_progress: ProgressCallback | None = None,
    chunk_rows: int = 50_000,
    asset_column: str | None = None,
) -> Table:
    """Read a CSV data set, streaming it in chunks of ``chunk_rows`` rows.

    ``on_progress`` is called with the number of bytes read so far (once per chunk and at the
    end). The timestamp column is ``timestamp_column``, else the first column named one of
    :data:`TIMESTAMP_NAMES` (any case), else the first column. The asset column (rows of
    several assets) is ``asset_column``, else a column named one of :data:`ASSET_NAMES`
    (any case), else there is none: every row is of one asset.

    >>> t = read_csv(b"ts,asset_id,v\\n0,p1,1\\n0,p2,5\\n1000,p1,2\\n")
    >>> t.columns, t.asset_column, t.assets.tolist()
    (('v',), 'asset_id', ['p1', 'p2', 'p1'])

    >>> t = read_csv(b"when,temp,state\\n2026-01-01T00:00:00Z,1.5,ok\\n2026-01-01T00:00:01Z,2,ok\\n",
    ...              timestamp_column="when")
    >>> t.columns, t.ts_ms.tolist(), dict(t.non_numeric)
    (('temp', 'state'), [1767225600000, 1767225601000], {'state': "row 1: 'ok'"})
    """
    lines = _lines(source, on_progress, max(chunk_rows, 1))
    header_line = next((ln for ln in lines if ln.strip()), None)
    if header_line is None:
        raise TrainingError("empty file: no header and no data")
    delimiter = detect_delimiter(header_line)
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=delimiter))]
    ts_idx = _timestamp_index(header, timestamp_column)
    asset_idx = _asset_index(header, asset_column, ts_idx)
    value_idx = [i for i in range(len(header)) if i not in (ts_idx, asset_idx)]
    columns = tuple(header[i] for i in value_idx)
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise TrainingError(f"column(s) named twice in the header: {', '.join(dup)}")
    non_numeric: dict[str, str] = {}
    ts_chunks: list[np.ndarray] = []
    value_chunks: list[np.ndarray] = []
    ts_buf: list[int] = []
    val_buf: list[list[float]] = []
    asset_codes: dict[str, int] = {}  # asset id → its number: one string per asset, not per row
    asset_rows: list[int] = []
    width = len(header)
    for row_no, fields in enumerate(
        csv.reader((ln for ln in lines if ln.strip()), delimiter=delimiter), start=1
    ):
        if len(fields) > width:
            raise TrainingError(f"row {row_no} has {len(fields)} fields, the header has {width}")
        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        try:
            ts_buf.append(parse_ts(fields[ts_idx]))
        except TrainingError as exc:
            raise TrainingError(f"row {row_no}: {exc.reason}") from None
        if asset_idx is not None:
            asset = fields[asset_idx].strip()
            if not asset:
                raise TrainingError(f"row {row_no}: no asset id in the asset column {header[asset_idx]!r}")
            asset_rows.append(asset_codes.setdefault(asset, len(asset_codes)))
        row = []
        for j, i in enumerate(value_idx):
            v = _cell(fields[i])
            if v is None:
                name = columns[j]
                non_numeric.setdefault(name, f"row {row_no}: {fields[i].strip()!r}")
                v = math.nan
            row.append(v)
        val_buf.append(row)
        if len(ts_buf) >= chunk_rows:
            ts_chunks.append(np.asarray(ts_buf, dtype=np.int64))
            value_chunks.append(np.asarray(val_buf, dtype=float).reshape(len(ts_buf), len(columns)))
            ts_buf, val_buf = [], []
    if ts_buf:
        ts_chunks.append(np.asarray(ts_buf, dtype=np.int64))
        value_chunks.append(np.asarray(val_buf, dtype=float).reshape(len(ts_buf), len(columns)))
    ts = np.concatenate(ts_chunks) if ts_chunks else np.zeros(0, dtype=np.int64)
    values = np.vstack(value_chunks) if value_chunks else np.zeros((0, len(columns)))
    if asset_idx is None:
        return Table(columns, ts, values, non_numeric, header[ts_idx])
    names = np.empty(len(asset_codes), dtype=object)
    names[:] = list(asset_codes)
    return Table(columns, ts, values, non_numeric, header[ts_idx],
                 names[np.asarray(asset_rows, dtype=np.int64)], header[asset_idx])


def _timestamp_index(header: Sequence[str], name: str | None) -> int:
    if name is not None:
        if name not in header:
            raise TrainingError(f"no timestamp column {name!r} (columns: {', '.join(header)})")
        return header.index(name)
    lowered = [h.lower() for h in header]
    for candidate in TIMESTAMP_NAMES:
        if candidate in lowered:
            return lowered.index(candidate)
    return 0


def _asset_index(header: Sequence[str], name: str | None, ts_idx: int) -> int | None:
    if name is not None:
        if name not in header:
            raise TrainingError(f"no asset column {name!r} (columns: {', '.join(header)})")
        index = header.index(name)
    else:
        lowered = [h.lower() for h in header]
        found = [lowered.index(n) for n in ASSET_NAMES if n in lowered]
        if not found:
            return None
        index = found[0]
    if index == ts_idx:
        raise TrainingError(f"column {header[index]!r} cannot be both the timestamp and the asset column")
    return index


def read_json(source: Path | bytes) -> Table:
    """Read a data set in the ``{"signalNames": [...], "data": [{"timestamp", "values"}]}`` form.

    >>> t = read_json(b'{"signalNames": ["a", "b"], "data": ['
    ...               b'{"timestamp": 0, "values": [1, null]}, {"timestamp": 1000, "values": [2, 3]}]}')
    >>> t.columns, t.values.tolist()
    (('a', 'b'), [[1.0, nan], [2.0, 3.0]])
    """
    raw = bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    if not raw.strip():
        raise TrainingError("empty file: no data")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TrainingError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("signalNames"), list) \
            or not isinstance(doc.get("data"), list):
        raise TrainingError(
            'JSON data must be {"signalNames": [...], "data": [{"timestamp": ..., "values": [...]}]}'
        )
    names = doc["signalNames"]
    if not all(isinstance(n, str) and n for n in names):
        raise TrainingError("signalNames must be non-empty strings")
    if len(set(names)) != len(names):
        raise TrainingError("a signal is named twice in signalNames")
    columns = tuple(names)
    n = len(columns)
    non_numeric: dict[str, str] = {}
    ts = np.zeros(len(doc["data"]), dtype=np.int64)
    values = np.full((len(doc["data"]), n), np.nan)
    for r, item in enumerate(doc["data"]):
        if not isinstance(item, dict) or "timestamp" not in item or not isinstance(item.get("values"), list):
            raise TrainingError(f"data[{r}] must be an object with a timestamp and a values list")
        if len(item["values"]) != n:
            raise TrainingError(f"data[{r}] has {len(item['values'])} values for {n} signal names")
        try:
            ts[r] = parse_ts(item["timestamp"])
        except TrainingError as exc:
            raise TrainingError(f"data[{r}]: {exc.reason}") from None
        for j, v in enumerate(item["values"]):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float):
                cell = _cell(v) if isinstance(v, str) else None
                if cell is None:
                    non_numeric.setdefault(columns[j], f"data[{r}]: {v!r}")
                    continue
                v = cell
            values[r, j] = float(v) if math.isfinite(v) else math.nan
    return Table(columns, ts, values, non_numeric, "timestamp")


def table_from_columns(data: Any, timestamp_column: str = "timestamp",
                       asset_column: str | None = None) -> Table:
    """A data set from columns in memory: a mapping of column name → array (a ``dict`` of
    numpy arrays or lists), or a data frame (pandas, polars, a pyarrow ``Table``): train on
    it as on a file, with the same preparation (:func:`prepare`) and fill.

    Timestamps: epoch milliseconds, ``datetime64`` values (UTC) or ISO-8601 text. Signal
    columns: numbers, NaN or None for missing; a column of text that is not numbers is
    reported as a file's would be. ``asset_column``: each row's asset id (several assets).

    >>> t = table_from_columns({"timestamp": [0, 1000, 2000], "temp": [20.5, None, 21.0]})
    >>> t.columns, t.ts_ms.tolist(), t.column("temp").tolist()
    (('temp',), [0, 1000, 2000], [20.5, nan, 21.0])
    >>> result = train(table_from_columns({"timestamp": np.arange(100) * 1000,
    ...                                    "v": np.sin(np.arange(100.0))}),
    ...                TrainingSpec("m", window_size=4))
    >>> result.model.signals, result.model.interval_ms
    (('v',), 1000)
    """
    names = [str(n) for n in (getattr(data, "column_names", None)
                              or getattr(data, "columns", None) or list(data.keys()))]
    if timestamp_column not in names:
        raise TrainingError(f"no timestamp column {timestamp_column!r} (columns: "
                            f"{', '.join(names)})")
    if asset_column is not None and asset_column not in names:
        raise TrainingError(f"no asset column {asset_column!r} (columns: {', '.join(names)})")
    ts_raw = np.asarray(data[timestamp_column])
    if np.issubdtype(ts_raw.dtype, np.datetime64):
        ts_ms = ts_raw.astype("datetime64[ms]").astype(np.int64)
    elif np.issubdtype(ts_raw.dtype, np.integer):
        ts_ms = ts_raw.astype(np.int64)
    else:
        ts_ms = np.array([parse_ts(v) for v in ts_raw.tolist()], dtype=np.int64)
    signals = [n for n in names if n not in (timestamp_column, asset_column)]
    columns: list[np.ndarray] = []
    non_numeric: dict[str, str] = {}
    for name in signals:
        raw = np.asarray(data[name])
        if np.issubdtype(raw.dtype, np.number) and not np.issubdtype(raw.dtype, np.complexfloating):
            col = raw.astype(float)
            col[~np.isfinite(col)] = np.nan
        else:
            col = np.full(raw.shape[0], np.nan)
            for i, v in enumerate(raw.tolist()):
                number = math.nan if v is None else _cell(str(v))
                if number is None:
                    non_numeric.setdefault(name, str(v))
                else:
                    col[i] = number
        columns.append(col)
    if ts_ms.shape[0] and any(c.shape[0] != ts_ms.shape[0] for c in columns):
        raise TrainingError("columns of different lengths")
    values = np.column_stack(columns) if columns else np.zeros((ts_ms.shape[0], 0))
    assets = None
    if asset_column is not None:
        assets = np.array([str(a) for a in np.asarray(data[asset_column]).tolist()], dtype=object)
    return Table(tuple(signals), ts_ms, values, non_numeric, timestamp_column, assets,
                 asset_column)


def read_table(
    path: Path, timestamp_column: str | None = None, on_progress: ProgressCallback | None = None,
    asset_column: str | None = None,
) -> Table:
    """Read a data set by its file name: ``.json`` as JSON, ``.parquet`` refused, else CSV."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        raise TrainingError(
            "Parquet is not supported (it would need pyarrow); convert the file to CSV "
            "or JSON first, see docs/models.md"
        )
    if suffix == ".json":
        if asset_column is not None:
            raise TrainingError(
                f"asset column {asset_column!r}: the JSON form holds one asset; use CSV for several"
            )
        table = read_json(path)
        if on_progress is not None:
            on_progress(Path(path).stat().st_size)
        return table
    return read_csv(path, timestamp_column=timestamp_column, on_progress=on_progress,
                    asset_column=asset_column)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Training rows on the interval grid, after the fill, with the data-quality report."""

    rows: np.ndarray  # points × signals, no NaN
    signals: tuple[str, ...]
    interval_ms: int
    quality: QualityReport
    #: ``rows`` cut into pieces contiguous in time, in order: one per asset and training range
    lengths: tuple[int, ...] = ()
    assets: tuple[str, ...] = ()  # the assets trained on, in file order (empty: no asset column)


def _choose_signals(table: Table, spec: TrainingSpec) -> tuple[str, ...]:
    if spec.signals:
        for s in spec.signals:
            if s not in table.columns:
                raise TrainingError(f"unknown signal {s!r} (columns: {', '.join(table.columns)})")
            if s in table.non_numeric:
                raise TrainingError(f"signal {s!r} is not numeric ({table.non_numeric[s]})")
        return spec.signals
    for s in spec.exclude:
        if s not in table.columns:
            raise TrainingError(f"unknown column to exclude {s!r} (columns: {', '.join(table.columns)})")
    chosen = tuple(c for c in table.columns if c not in table.non_numeric and c not in spec.exclude)
    if not chosen:
        raise TrainingError(
            f"no numeric signals in the file (columns: {', '.join(table.columns) or 'none'} "
            f"besides the timestamp column {table.timestamp_column!r})"
        )
    return chosen


def _fill(grid: np.ndarray, method: str, max_fill_points: int = DEFAULT_MAX_FILL_POINTS,
          ) -> np.ndarray:
    """One range's grid (slots × signals, NaN: missing) filled exactly as the stream fills an
    asset's points; a slot the stream would not push into the window stays NaN (dropped).

    The stream's own rules, in slot order (:mod:`streams.watermark`, :func:`streams.fill.fill`,
    :func:`streams.fill.complete_row`): a run of at most ``max_fill_points`` slots with no
    reading between two readings is filled by the method from those two readings, a longer
    run is a gap (not filled: the window spans it); a signal a point lacks is carried forward
    from the row before in the window (``previous``, ``linear``) or 0 (``zero``), and a point
    that cannot be completed (nothing before it, or ``none``) is skipped.

    >>> g = np.array([[0.0], [np.nan], [np.nan], [3.0]])
    >>> _fill(g, "linear").ravel().tolist(), _fill(g, "linear", 1)[1:3].ravel().tolist()
    ([0.0, 1.0, 2.0, 3.0], [nan, nan])
    >>> _fill(np.array([[1.0, 5.0], [2.0, np.nan]]), "linear")[1].tolist()  # carried forward
    [2.0, 5.0]
    """
    missing = np.isnan(grid)
    if not missing.any():
        return grid.copy()
    out = np.full_like(grid, np.nan)
    names = tuple(str(j) for j in range(grid.shape[1]))
    last_row: tuple[float, ...] | None = None
    before: tuple[int, dict[str, float]] | None = None  # the last reading: slot, values
    for i, values in enumerate(grid.tolist()):
        point = {n: v for n, v in zip(names, values, strict=True) if v == v}
        if not point:
            continue  # no reading in this slot: filled (or not) when the next one comes
        if before is not None and 0 < i - before[0] - 1 <= max_fill_points:
            b, b_values = before
            for k in range(b + 1, i):
                made = fill(method, b, b_values, i, point, k)  # type: ignore[arg-type]
                if made is not None:
                    row, _ = complete_row(names, method, made, last_row)
                    if row is not None:
                        out[k] = last_row = row
        row, _ = complete_row(names, method, point, last_row)
        if row is not None:
            out[i] = last_row = row
        before = (i, point)
    return out


def prepare(table: Table, spec: TrainingSpec) -> Prepared:
    """Choose the signals, sort, keep the ranges, re-sample onto the grid, fill, report quality.

    With an asset column each asset's rows are taken apart (sorted, de-duplicated, re-sampled
    and filled on their own) and the model is trained on all of them: one model shared by the
    assets, no window spanning two of them (``Prepared.lengths``).

    >>> t = read_csv(b"ts,v\\n0,1\\n1000,\\n3000,4\\n")   # 1000 ms empty, 2000 ms absent
    >>> p = prepare(t, TrainingSpec("m", fill="linear", interval_ms=1000, window_size=1))
    >>> p.rows[:, 0].tolist(), p.quality.signals[0].missing, p.quality.signals[0].filled
    ([1.0, 2.0, 3.0, 4.0], 2, 2)
    >>> try:
    ...     prepare(t, TrainingSpec("m", fill="none", interval_ms=1000, window_size=1))
    ... except TrainingError as exc:
    ...     print(exc.reason[:58], exc.quality.dropped)
    too few points for the window: 2 complete point(s) after t 2
    >>> two = read_csv(b"ts,asset_id,v\\n0,a,1\\n0,b,5\\n1000,a,2\\n1000,b,6\\n2000,a,3\\n")
    >>> p = prepare(two, TrainingSpec("m", window_size=1))
    >>> p.assets, p.lengths, p.rows[:, 0].tolist(), p.quality.duplicate_timestamps
    (('a', 'b'), (3, 2), [1.0, 2.0, 3.0, 5.0, 6.0], 0)
    """
    if table.rows == 0:
        raise TrainingError("empty file: no data rows")
    signals = _choose_signals(table, spec)
    cols = [table.columns.index(s) for s in signals]
    values = table.values[:, cols]
    assets, groups = _asset_groups(table)
    duplicates = non_increasing = 0
    segments: list[tuple[np.ndarray, np.ndarray]] = []
    for rows_of_asset in groups:
        a_ts, a_values = table.ts_ms[rows_of_asset], values[rows_of_asset]
        dup, non_inc = timestamp_quality(a_ts)
        duplicates, non_increasing = duplicates + dup, non_increasing + non_inc
        order = np.argsort(a_ts, kind="stable")
        a_ts, a_values = a_ts[order], a_values[order]
        last_of_each = np.append(a_ts[1:] != a_ts[:-1], True)  # the last row of a duplicated timestamp wins
        a_ts, a_values = a_ts[last_of_each], a_values[last_of_each]
        if spec.ranges:
            for r in sorted(spec.ranges, key=lambda r: r.from_ms):
                inside = (a_ts >= r.from_ms) & (a_ts < r.to_ms)
                if inside.any():
                    segments.append((a_ts[inside], a_values[inside]))
        else:
            segments.append((a_ts, a_values))
    if not segments:
        shown = ", ".join(f"[{r.from_ms}, {r.to_ms})" for r in spec.ranges)
        raise TrainingError(f"no rows in the training range(s) {shown} ms")
    kept = np.vstack([v for _, v in segments])
    for j, s in enumerate(signals):
        if np.all(np.isnan(kept[:, j])):
            where = " in the training range(s)" if spec.ranges else ""
            raise TrainingError(f"signal {s!r} has no values{where}")
    interval = spec.interval_ms or _median_step(segments)
    grids, missing_masks, n_rows = [], [], 0
    for seg_ts, seg_values in segments:
        n_rows += seg_ts.size
        slot = np.rint((seg_ts - seg_ts[0]) / interval).astype(np.int64)
        n_slots = int(slot[-1]) + 1
        if n_slots > _MAX_SLOTS_PER_ROW * seg_ts.size + 1_000:
            raise TrainingError(
                f"a data interval of {interval} ms makes {n_slots} slots of {seg_ts.size} rows; "
                "choose a larger --interval-ms"
            )
        grid = np.full((n_slots, len(signals)), np.nan)
        grid[slot] = seg_values  # rows in time order: the last one in a slot wins
        grids.append(_fill(grid, spec.fill, spec.max_fill_points))
        missing_masks.append(np.isnan(grid))
    filled_grid = np.vstack(grids)
    missing = np.vstack(missing_masks)
    filled = missing & ~np.isnan(filled_grid)
    complete = ~np.isnan(filled_grid).any(axis=1)
    lengths = tuple(n for g in grids if (n := int((~np.isnan(g).any(axis=1)).sum())) > 0)
    stuck_run = max(spec.window_size + 1, 10)
    quality = QualityReport(
        rows=table.rows,
        duplicate_timestamps=duplicates,
        non_increasing_timestamps=non_increasing,
        interval_ms=int(interval),
        slots=int(filled_grid.shape[0]),
        dropped=int((~complete).sum()),
        signals=tuple(
            signal_quality(s, kept[:, j], int(missing[:, j].sum()), int(filled[:, j].sum()),
                           int(filled_grid.shape[0]), stuck_run)
            for j, s in enumerate(signals)
        ),
        assets=len(assets),
    )
    rows = filled_grid[complete]
    _check_enough(rows.shape[0], lengths, spec, quality)
    return Prepared(rows, signals, int(interval), quality, lengths, assets)


def _asset_groups(table: Table) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The assets in order of their first row, and each one's row indices (one group of every
    row when the table has no asset column)."""
    if table.assets is None:
        return (), [np.arange(table.rows)]
    names, first, inverse = np.unique(table.assets.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    return (tuple(str(names[i]) for i in order),
            [np.flatnonzero(inverse == i) for i in order])


def _median_step(segments: Sequence[tuple[np.ndarray, np.ndarray]]) -> int:
    steps = np.concatenate([np.diff(t) for t, _ in segments])
    steps = steps[steps > 0]
    if steps.size == 0:
        raise TrainingError("too few points for the window: a single timestamp, no data interval")
    return max(int(np.median(steps)), 1)


def _check_enough(n: int, lengths: Sequence[int], spec: TrainingSpec, quality: QualityReport) -> None:
    need = spec.window_size + 2
    if spec.target_far is not None:
        held = round(n * HOLDOUT_FRACTION)
        if n - held < need or held < 1:
            raise TrainingError(
                f"too few points for the window: {n} complete point(s) after the fill; a window "
                f"of {spec.window_size} needs {need} besides the {HOLDOUT_FRACTION:.0%} held out "
                "for the target false-alarm rate",
                quality,
            )
    elif n < need:
        raise TrainingError(
            f"too few points for the window: {n} complete point(s) after the fill; "
            f"a window of {spec.window_size} needs at least {need}",
            quality,
        )
    if max(lengths, default=0) < need:
        raise TrainingError(
            f"too few points for the window: at most {max(lengths, default=0)} consecutive "
            f"complete point(s) of one asset and range; a window of {spec.window_size} needs "
            f"at least {need}",
            quality,
        )


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """A fitted model with its quality report and what it is expected to do on its own data."""

    model: Model
    quality: QualityReport
    training_points: int
    training_far: tuple[float, ...]  # share of training points flagged at sensitivity 1..100

    def expected_far(self, sensitivity: int = DEFAULT_SENSITIVITY) -> float:
        """The share of training points flagged at ``sensitivity`` (a probability)."""
        threshold_for(sensitivity)
        return self.training_far[sensitivity - 1]

    def calibration_summary(self) -> dict[str, Any]:
        """The calibration in a few numbers, for the registry and ``model show``."""
        cal = self.model.calibrator
        return {
            "kind": "quantile-tail",
            "training_points": self.training_points,
            "score_median": cal.knots[len(cal.knots) // 2],
            "score_q90": cal.knots[-1],
            "tail_scale": cal.tail_scale,
            "expected_far_at_default": self.expected_far(DEFAULT_SENSITIVITY),
            "default_sensitivity": DEFAULT_SENSITIVITY,
        }


def far_by_sensitivity(
    model: Model, rows: np.ndarray, lengths: Sequence[int] | None = None
) -> tuple[float, ...]:
    """Share of ``rows`` (the training points) flagged at each sensitivity 1..100, frozen model.

    ``lengths`` cuts the rows into pieces no window spans (as in :func:`streams.model.fit_model`).

    >>> rows = np.random.default_rng(0).normal(size=(300, 1))
    >>> far = far_by_sensitivity(fit_model(rows, ModelParams("m", ("v",), window_size=8)), rows)
    >>> len(far), far[0] <= far[69] <= far[99]
    (100, True)
    """
    scores = training_scores(model.detector, rows, lengths=lengths)
    if scores.size == 0:
        return (0.0,) * 100
    sev = np.sort(np.array([model.calibrator.severity(float(s)) for s in scores]))
    n = sev.size
    out = []
    for s in range(1, 101):
        at = np.searchsorted(sev, threshold_for(s) - 1e-12, side="left")
        out.append(float((n - at) / n))
    return tuple(out)


def train(table: Table, spec: TrainingSpec) -> TrainingResult:
    """Prepare the table by ``spec``, fit and calibrate the model, measure its training FAR."""
    prepared = prepare(table, spec)
    params = ModelParams(
        model_id=spec.name,
        signals=prepared.signals,
        window_size=spec.window_size,
        interval_ms=prepared.interval_ms,
        fill=spec.fill,
        algorithm=spec.algorithm,
        version=spec.version,
        target_far=spec.target_far,
        holdout_fraction=HOLDOUT_FRACTION,
        detector_options=dict(spec.detector_options),
        flags=spec.flags,
    )
    try:
        model = fit_model(prepared.rows, params, prepared.lengths)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise TrainingError(f"fitting failed: {exc}", prepared.quality) from None
    return TrainingResult(
        model=model,
        quality=prepared.quality,
        training_points=int(prepared.rows.shape[0]),
        training_far=far_by_sensitivity(model, prepared.rows, prepared.lengths),
    )
