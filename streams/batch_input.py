"""Batch input: rows of a CSV or ``signalNames``/``data`` table → readings, bad rows counted.

Two readers of the forms a model is trained from (:mod:`streams.training`), for detection:

* **jobs** (:func:`csv_chunks`, :func:`json_chunks`) read a stream in chunks of
  ``chunk_rows`` rows, so memory is bounded by the chunk, not the file. A row that cannot be
  read (a timestamp that is neither epoch milliseconds nor ISO-8601, a value that is text
  but not a number, too many fields, a ``data`` item of the wrong shape) becomes a
  :class:`RowError` — counted and reported, the rest goes on. An input that cannot be read
  at all (no header, a model signal missing from it) raises :class:`InputError`.
* **the synchronous request** (:func:`parse_detect_request`) is all or nothing: any fault
  is a :class:`RequestError` naming the field at fault (HTTP 400), and more than
  :data:`streams.batch.SYNC_POINT_LIMIT` data points is one too (HTTP 413).

Empty cells, ``null``, ``NaN`` and non-finite numbers are missing values: the reading lacks
the signal, and the scorer fills it by the model's fill method or counts it incomplete.
Columns that are not the model's signals are ignored (labels, comments…).

>>> import io
>>> text = io.StringIO("ts,temp,label\\n0,1.5,x\\n1000,,y\\nsoon,2,z\\n2000,hot,z\\n")
>>> [(len(c.readings), [(e.row, e.kind) for e in c.errors]) for c in csv_chunks(text, ("temp",), "s")]
[(2, [(3, 'timestamp'), (4, 'value')])]
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import numpy as np

from streams.batch import SYNC_POINT_LIMIT
from streams.records import Reading
from streams.training import TIMESTAMP_NAMES, TrainingError, detect_delimiter, parse_ts

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Chunk",
    "DetectRequest",
    "InputError",
    "RejectedRows",
    "RequestError",
    "RowError",
    "csv_chunks",
    "json_chunks",
    "parquet_chunks",
    "parse_detect_request",
]

#: Rows per chunk: large enough that per-chunk work is noise, small enough for bounded memory.
DEFAULT_CHUNK_ROWS = 20_000
#: How many bad rows a job reports one by one (all are counted).
MAX_EXAMPLES = 10
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})

RowErrorKind = Literal["timestamp", "value", "fields", "shape"]


class InputError(ValueError):
    """The input cannot be read at all; the message says why."""


class RequestError(ValueError):
    """A synchronous request refused: ``status`` 400 (malformed) or 413 (too large)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that could not be read: its 1-based data row number, why, and the kind of fault."""

    row: int
    reason: str
    kind: RowErrorKind


@dataclass(frozen=True, slots=True)
class Chunk:
    """Up to ``chunk_rows`` rows of the input: the readings and the rows refused."""

    readings: list[Reading]
    errors: list[RowError]


@dataclass(slots=True)
class RejectedRows:
    """Bad rows of an input: counted by kind, the first :data:`MAX_EXAMPLES` kept.

    >>> r = RejectedRows()
    >>> r.add([RowError(3, "x", "value"), RowError(9, "y", "value")])
    >>> r.to_plain()
    {'by_reason': {'value': 2}, 'examples': [{'row': 3, 'reason': 'x'}, {'row': 9, 'reason': 'y'}]}
    """

    by_reason: dict[str, int] = field(default_factory=dict)
    examples: list[RowError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, errors: Iterable[RowError]) -> None:
        for e in errors:
            self.by_reason[e.kind] = self.by_reason.get(e.kind, 0) + 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(e)

    def summary(self) -> str:
        """One line: ``2 rows rejected (1 timestamp, 1 value); first: row 17: …``."""
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_reason.items()))
        first = f"; first: row {self.examples[0].row}: {self.examples[0].reason}" if self.examples else ""
        return f"{self.total} row(s) rejected ({kinds}){first}"

    def to_plain(self) -> dict[str, Any]:
        return {"by_reason": dict(sorted(self.by_reason.items())),
                "examples": [{"row": e.row, "reason": e.reason} for e in self.examples]}


def _timestamp(text: Any) -> int | str:
    """Epoch ms, or the reason it is not a timestamp."""
    if type(text) is str:
        try:
            return int(text)
        except ValueError:
            pass
    try:
        return parse_ts(text)
    except TrainingError as exc:
        return exc.reason


def _value(cell: str) -> float | str | None:
    """A CSV cell as a float, ``None`` when missing, or the reason it is not a number."""
    try:
        v = float(cell)
    except ValueError:
        if cell.strip().lower() in _MISSING:
            return None
        return f"is not a number: {cell.strip()!r}"
    return v if math.isfinite(v) else None


def _signal_index(columns: Sequence[str], signals: Sequence[str], where: str) -> list[tuple[str, int]]:
    missing = [s for s in signals if s not in columns]
    if missing:
        raise InputError(f"{where} lacks the model's signal(s) {', '.join(missing)} "
                         f"(it has: {', '.join(c for c in columns if c) or 'none'})")
    return [(s, columns.index(s)) for s in signals]


def csv_chunks(text: TextIO, signals: Sequence[str], series: str,
               chunk_rows: int = DEFAULT_CHUNK_ROWS,
               timestamp_column: str | None = None) -> Iterator[Chunk]:
    """Read a CSV stream (header first, the delimiter detected from it) in chunks."""
    header_line = ""
    while not header_line.strip():
        header_line = text.readline()
        if not header_line:
            raise InputError("empty input: no header and no data")
    header_line = header_line.lstrip("\ufeff")
    delimiter = detect_delimiter(header_line)
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=delimiter))]
    if timestamp_column is not None:
        if timestamp_column not in header:
            raise InputError(f"no timestamp column {timestamp_column!r} (columns: {', '.join(header)})")
        ts_idx = header.index(timestamp_column)
    else:
        lowered = [h.lower() for h in header]
        ts_idx = next((lowered.index(n) for n in TIMESTAMP_NAMES if n in lowered), 0)
    columns = [h if i != ts_idx else "" for i, h in enumerate(header)]
    wanted = _signal_index(columns, signals, "the header")
    width = len(header)
    lines: list[str] = []
    first_row = 1
    for line in text:
        if not line.strip():
            continue
        lines.append(line)
        if len(lines) >= chunk_rows:
            yield _csv_chunk(lines, first_row, delimiter, width, ts_idx, wanted, series)
            first_row += len(lines)
            lines = []
    if lines:
        yield _csv_chunk(lines, first_row, delimiter, width, ts_idx, wanted, series)


#: epoch ms beyond this are not exact as doubles: the fast path leaves them to the careful one
_EXACT_MS = 2.0**53


def _csv_chunk(lines: list[str], first_row: int, delimiter: str, width: int, ts_idx: int,
               wanted: Sequence[tuple[str, int]], series: str) -> Chunk:
    """The chunk of ``lines``: at C speed when every row is plain numbers with integer epoch-ms
    timestamps (the common case), else row by row, with each bad row's reason."""
    try:
        table = np.loadtxt(lines, delimiter=delimiter, dtype=np.float64, ndmin=2,
                           usecols=[ts_idx, *(i for _, i in wanted)], comments=None)
    except ValueError:
        table = None
    if table is not None and table.shape == (len(lines), len(wanted) + 1):
        ts = table[:, 0]
        if np.all(np.abs(ts) < _EXACT_MS) and np.array_equal(ts, np.floor(ts)) and \
                all(ln.count(delimiter) == width - 1 for ln in lines):
            names = [name for name, _ in wanted]
            values = table[:, 1:]
            stamps = ts.astype(np.int64).tolist()
            if np.isfinite(values).all():
                return Chunk([Reading(series, t, dict(zip(names, row, strict=True)))
                              for t, row in zip(stamps, values.tolist(), strict=True)], [])
            return Chunk([Reading(series, t, {n: v for n, v in zip(names, row, strict=True)
                                              if math.isfinite(v)})
                          for t, row in zip(stamps, values.tolist(), strict=True)], [])
    return _csv_rows(lines, first_row, delimiter, width, ts_idx, wanted, series)


def _csv_rows(lines: list[str], first_row: int, delimiter: str, width: int, ts_idx: int,
              wanted: Sequence[tuple[str, int]], series: str) -> Chunk:
    readings: list[Reading] = []
    errors: list[RowError] = []
    row_no = first_row - 1
    for fields in csv.reader(lines, delimiter=delimiter):
        row_no += 1
        if len(fields) > width:
            errors.append(RowError(row_no, f"{len(fields)} fields, the header has {width}", "fields"))
            continue
        n = len(fields)
        ts = _timestamp(fields[ts_idx]) if ts_idx < n else "no timestamp"
        if type(ts) is str:
            errors.append(RowError(row_no, ts, "timestamp"))
            continue
        values: dict[str, float] = {}
        bad = None
        for name, i in wanted:
            if i >= n:
                continue
            v = _value(fields[i])
            if v is None:
                continue
            if type(v) is str:
                bad = RowError(row_no, f"signal {name!r} {v}", "value")
                break
            values[name] = v  # type: ignore[assignment]
        if bad is not None:
            errors.append(bad)
        else:
            readings.append(Reading(series, ts, values))  # type: ignore[arg-type]
    return Chunk(readings, errors)


def parquet_chunks(source: Any, signals: Sequence[str], series: str,
                   chunk_rows: int = DEFAULT_CHUNK_ROWS,
                   timestamp_column: str | None = None) -> Iterator[Chunk]:
    """Read a Parquet file (a path or a seekable binary file) in record batches of ``chunk_rows``.

    Needs pyarrow (the ``parquet`` extra). The timestamp column is a Parquet timestamp (any
    unit, taken as UTC), integer epoch milliseconds, or text as in CSV; nulls are missing.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet input needs pyarrow: pip install 'assetwatch[parquet]'") from None
    try:
        pf = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a Parquet file: {exc}") from None
    header = list(pf.schema_arrow.names)
    if timestamp_column is not None:
        if timestamp_column not in header:
            raise InputError(f"no timestamp column {timestamp_column!r} (columns: {', '.join(header)})")
        ts_name = timestamp_column
    else:
        lowered = [h.lower() for h in header]
        ts_name = header[next((lowered.index(n) for n in TIMESTAMP_NAMES if n in lowered), 0)]
    columns = [h if h != ts_name else "" for h in header]
    wanted = _signal_index(columns, signals, "the Parquet schema")
    names = [name for name, _ in wanted]
    first_row = 1
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=[ts_name, *names]):
        ts_col = batch.column(0)
        if pa.types.is_timestamp(ts_col.type):
            ts_col = pc.cast(pc.cast(ts_col, pa.timestamp("ms", tz=ts_col.type.tz)), pa.int64())
        stamps = ts_col.to_pylist()
        cols = []
        for j in range(1, batch.num_columns):
            col = batch.column(j)
            numeric = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
            cols.append(pc.cast(col, pa.float64()).to_pylist() if numeric else col.to_pylist())
        readings: list[Reading] = []
        errors: list[RowError] = []
        for k, raw_ts in enumerate(stamps):
            row_no = first_row + k
            ts = "no timestamp" if raw_ts is None else raw_ts if type(raw_ts) is int else _timestamp(raw_ts)
            if type(ts) is str:
                errors.append(RowError(row_no, ts, "timestamp"))
                continue
            values: dict[str, float] = {}
            bad = None
            for name, col in zip(names, cols, strict=True):
                v = col[k]
                if v is None:
                    continue
                if not isinstance(v, float):
                    parsed = _value(v) if isinstance(v, str) else f"is not a number: {v!r}"
                    if type(parsed) is str:
                        bad = RowError(row_no, f"signal {name!r} {parsed}", "value")
                        break
                    if parsed is None:
                        continue
                    v = parsed
                if math.isfinite(v):
                    values[name] = v
            if bad is not None:
                errors.append(bad)
            else:
                readings.append(Reading(series, ts, values))  # type: ignore[arg-type]
        first_row += len(stamps)
        yield Chunk(readings, errors)


def _names(names: Any, where: str) -> list[str]:
    if not isinstance(names, list) or not names or \
            not all(isinstance(n, str) and n for n in names):
        raise InputError(f"{where}: signalNames must be a non-empty list of non-empty strings")
    if len(set(names)) != len(names):
        raise InputError(f"{where}: a signal is named twice in signalNames")
    return names


def _json_row(item: Any, row_no: int, wanted: Sequence[tuple[str, int]], width: int,
              series: str) -> Reading | RowError:
    if not isinstance(item, dict) or "timestamp" not in item or not isinstance(item.get("values"), list):
        return RowError(row_no, "expected an object with a timestamp and a values list", "shape")
    vals = item["values"]
    if len(vals) != width:
        return RowError(row_no, f"{len(vals)} values for {width} signal names", "fields")
    ts = _timestamp(item["timestamp"])
    if type(ts) is str:
        return RowError(row_no, ts, "timestamp")
    signals: dict[str, float] = {}
    for name, i in wanted:
        v = vals[i]
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            parsed = _value(v) if isinstance(v, str) else f"is not a number: {v!r}"
            if type(parsed) is str:
                return RowError(row_no, f"signal {name!r} {parsed}", "value")
            if parsed is None:
                continue
            v = parsed
        v = float(v)
        if math.isfinite(v):
            signals[name] = v
    return Reading(series, ts, signals)  # type: ignore[arg-type]


def json_chunks(names: Any, items: Iterable[Any], signals: Sequence[str], series: str,
                chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Read the ``data`` items of a ``signalNames``/``data`` table in chunks (row = index + 1).

    >>> list(json_chunks(["a"], [{"timestamp": 5, "values": [1]}, {"timestamp": 6}], ["a"], "s"))
    ... # doctest: +NORMALIZE_WHITESPACE
    [Chunk(readings=[Reading(asset_id='s', ts_ms=5, signals={'a': 1.0})],
           errors=[RowError(row=2, reason='expected an object with a timestamp and a values list',
                            kind='shape')])]
    """
    columns = _names(names, "input")
    wanted = _signal_index(columns, signals, "signalNames")
    width = len(columns)
    readings: list[Reading] = []
    errors: list[RowError] = []
    for row_no, item in enumerate(items, start=1):
        got = _json_row(item, row_no, wanted, width, series)
        if isinstance(got, RowError):
            errors.append(got)
        else:
            readings.append(got)
        if len(readings) + len(errors) >= chunk_rows:
            yield Chunk(readings, errors)
            readings, errors = [], []
    if readings or errors:
        yield Chunk(readings, errors)


@dataclass(frozen=True, slots=True)
class DetectRequest:
    """A synchronous request, checked: which model, how sensitive, and the table."""

    model: str
    model_version: int | None
    sensitivity: int | None
    max_fill_points: int | None
    signal_names: tuple[str, ...]
    data: Sequence[Mapping[str, Any]]

    @property
    def points(self) -> int:
        return len(self.data) * len(self.signal_names)

    def readings(self, signals: Sequence[str], series: str = "request") -> list[Reading]:
        """The rows as readings of the model's ``signals``; any bad row is a 400 naming it."""
        try:
            wanted = _signal_index(self.signal_names, signals, "signalNames")
        except InputError as exc:
            raise RequestError(400, f"signalNames: {exc}") from None
        out = []
        width = len(self.signal_names)
        for i, item in enumerate(self.data):
            got = _json_row(item, i + 1, wanted, width, series)
            if isinstance(got, RowError):
                at = "timestamp" if got.kind == "timestamp" else "values"
                raise RequestError(400, f"data[{i}].{at}: {got.reason}")
            out.append(got)
        return out


def parse_detect_request(doc: Any, validate: Any, limit: int = SYNC_POINT_LIMIT) -> DetectRequest:
    """Check a decoded request body; ``validate`` is the compiled schema validator.

    The size is checked before the rows, so an oversize table is refused at once as such.

    >>> import schemas
    >>> check = schemas.validator("detect-request.v1")
    >>> req = parse_detect_request({"model": "m", "signalNames": ["a", "b"],
    ...                             "data": [{"timestamp": 0, "values": [1, 2]}] * 3}, check)
    >>> req.points
    6
    >>> parse_detect_request({"model": "m", "signalNames": ["a", "b"],
    ...                       "data": [{"timestamp": 0, "values": [1, 2]}] * 3}, check, limit=5)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.batch_input.RequestError: 6 data points (3 timestamps × 2 signals) is over the ... of 5; ...
    >>> parse_detect_request({"model": "m", "signalNames": "a", "data": []}, check)
    Traceback (most recent call last):
    ...
    streams.batch_input.RequestError: signalNames must be array
    """
    if not isinstance(doc, dict):
        raise RequestError(400, "the request body must be a JSON object")
    names, data = doc.get("signalNames"), doc.get("data")
    if isinstance(names, list) and isinstance(data, list):
        points = len(names) * len(data)
        if points > limit:
            raise RequestError(
                413, f"{points:,} data points ({len(data):,} timestamps × {len(names)} "
                     f"signal{'' if len(names) == 1 else 's'}) is "
                     f"over the synchronous limit of {limit:,}; submit larger data as an "
                     "asynchronous job (assetwatch job create, POST /v1/jobs)")
    try:
        validate(doc)
    except Exception as exc:  # the schema validator's error names the field
        message = getattr(exc, "message", str(exc))
        raise RequestError(400, _field_message(message)) from None
    return DetectRequest(
        model=doc["model"], model_version=doc.get("model_version"),
        sensitivity=doc.get("sensitivity"), max_fill_points=doc.get("max_fill_points"),
        signal_names=tuple(names), data=data)  # type: ignore[arg-type]


def _field_message(message: str) -> str:
    """``data.data[3].values must be array`` → ``data[3].values must be array``.

    >>> _field_message("data must contain ['model'] properties")
    "request must contain ['model'] properties"
    """
    if message.startswith("data."):
        return message[len("data."):]
    if message.startswith("data "):
        return "request " + message[len("data "):]
    return message
