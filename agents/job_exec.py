"""Running one detection job in this process: input → chunks → batch scorer → results file.

:func:`execute` is what a worker's job runner calls for each job it takes (agents/job_runner.py)
and what the benchmark times; it needs no broker. It reads the input in chunks
(``streams.batch_input``) through :class:`streams.batch.BatchScorer` — the stream's scoring
path — and streams each anomaly into the results file as it is found, so memory is the
chunk, the window and the writer's buffer, whatever the size of the input.

Formats, by the input's extension: ``.json`` is the ``signalNames``/``data`` form, read with
ijson in two passes (``signalNames`` first, wherever it is in the document; then the
``data`` items one at a time); ``.parquet``/``.pq`` is Parquet, read a record batch at a time
with pyarrow (the ``parquet`` extra; an S3 object is first copied to a temporary file, since
Parquet needs random access); anything else is CSV.

``checkpoint`` is called between chunks: it raises :class:`JobStoppedError` to stop the job (a
cancel, the worker stopping, the job's partition moving to another worker); the partial
results file is then discarded.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson
import orjson

from agents.job_io import InputSource, Storage, StorageError, parse_location
from agents.model_store import ModelStore, ModelStoreError
from streams.batch import DEFAULT_MAX_FILL_POINTS, BatchScorer, Detection
from streams.batch_input import (
    DEFAULT_CHUNK_ROWS,
    Chunk,
    InputError,
    RejectedRows,
    csv_chunks,
    json_chunks,
    parquet_chunks,
)
from streams.jobs import JobSpec, outcome

__all__ = ["Execution", "JobStoppedError", "execute"]

ProgressCallback = Callable[[float, dict[str, int]], None]


class JobStoppedError(Exception):
    """The job was stopped between chunks: ``why`` is ``canceled`` or ``abandoned``."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class Execution:
    """How a job ended: its final state, the reason if it failed, counts and the results file."""

    state: str
    reason: str | None = None
    counts: dict[str, int] | None = None
    rejected: dict[str, Any] | None = None
    result: str | None = None


def _chunks(source: InputSource, spec: JobSpec, signals: tuple[str, ...],
            chunk_rows: int) -> Iterator[Chunk]:
    series = spec.input_name
    if source.location.path.lower().endswith(".json"):
        with source.open() as first:
            names = next(ijson.items(first, "signalNames"), None)
        if names is None:
            raise InputError('the JSON input has no signalNames: expected '
                             '{"signalNames": [...], "data": [{"timestamp": ..., "values": [...]}]}')
        source.read_bytes[0] = 0
        with source.open() as fh:
            yield from json_chunks(names, ijson.items(fh, "data.item", use_float=True), signals,
                                   series, chunk_rows)
        return
    if source.location.path.lower().endswith((".parquet", ".pq")):
        with source.seekable() as fh:
            for chunk in parquet_chunks(fh, signals, series, chunk_rows, spec.timestamp_column):
                source.read_bytes[0] = fh.tell()
                yield chunk
        return
    with source.open() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        yield from csv_chunks(text, signals, series, chunk_rows, spec.timestamp_column)


def _entries(out: IO[bytes], found: list[Detection], first: bool) -> bool:
    for d in found:
        if not first:
            out.write(b",\n")
        out.write(orjson.dumps(d.to_plain()))
        first = False
    return first


def execute(spec: JobSpec, store: ModelStore, storage: Storage,
            on_progress: ProgressCallback = lambda pct, counts: None,
            checkpoint: Callable[[], None] = lambda: None,
            chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Execution:
    """Run ``spec`` to its end; a :class:`JobStoppedError` from ``checkpoint`` propagates."""
    try:
        model = store.load(spec.model_id, spec.model_version)
    except ModelStoreError as exc:
        return Execution("Failed", str(exc))
    try:
        source = storage.open_input(parse_location(spec.input))
        writer = storage.results_writer(parse_location(spec.output), model.model_id,
                                        spec.results_name, spec.job_id)
    except StorageError as exc:
        return Execution("Failed", str(exc))
    fill = DEFAULT_MAX_FILL_POINTS if spec.max_fill_points is None else spec.max_fill_points
    scorer = BatchScorer(model, spec.sensitivity, fill)
    rejected = RejectedRows()
    out = writer.file
    try:
        head = orjson.dumps({"job_id": spec.job_id, "input": spec.input, **scorer.header()})
        # counts come last: they are known at the end; anomalies are written as they are found
        out.write(head[:head.rindex(b',"counts"')] + b',"anomalies":[\n')
        first = True
        size = max(source.size, 1)
        for chunk in _chunks(source, spec, model.signals, chunk_rows):
            checkpoint()
            if chunk.errors:
                rejected.add(chunk.errors)
                scorer.reject(len(chunk.errors))
            first = _entries(out, scorer.feed(chunk.readings), first)
            on_progress(min(99.9, 100.0 * source.done / size), scorer.counts.to_plain())
        checkpoint()
        _entries(out, scorer.finish(), first)
        counts = scorer.counts
        state, reason = outcome(counts.rows, counts.rejected,
                                f"row {rejected.examples[0].row}: {rejected.examples[0].reason}"
                                if rejected.examples else None)
        if state == "Failed":
            writer.discard()
            return Execution(state, reason, counts.to_plain(), rejected.to_plain())
        tail = {"counts": counts.to_plain(), **({"rejected": rejected.to_plain()} if rejected.total else {})}
        out.write(b"\n]," + orjson.dumps(tail)[1:])
        result = writer.commit()
    except JobStoppedError:
        writer.discard()
        raise
    except (InputError, StorageError) as exc:
        writer.discard()
        return Execution("Failed", str(exc), scorer.counts.to_plain(), rejected.to_plain())
    except ijson.JSONError as exc:
        writer.discard()
        return Execution("Failed", f"the input is not valid JSON: {exc}", scorer.counts.to_plain(),
                         rejected.to_plain())
    except (UnicodeDecodeError, OSError) as exc:
        writer.discard()
        return Execution("Failed", f"cannot read {spec.input}: {exc}", scorer.counts.to_plain(),
                         rejected.to_plain())
    except BaseException:
        writer.discard()
        raise
    return Execution(state, None, counts.to_plain(),
                     rejected.to_plain() if rejected.total else None, result)
