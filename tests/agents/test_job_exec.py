"""One job run in-process over local files: results as the stream finds them, bad rows, stops."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest

import schemas
from agents.job_exec import JobStoppedError, execute
from agents.job_io import Storage
from agents.model_store import ModelStore
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.jobs import JobSpec
from streams.model import Model, ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet, training_rows
from tests.detections import assert_same_detections

T0 = 1_767_225_600_000


@pytest.fixture(scope="module")
def model() -> Model:
    return fit_model(training_rows(2, 1500, seed=3),
                     ModelParams(model_id="pumps", signals=SIGNALS, window_size=8))


@pytest.fixture
def store(tmp_path: Path, model: Model) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.save(model)
    return store


def pump(points: int) -> list[Reading]:
    faults = [Fault("p", "spike", 100, 3), Fault("p", "drift", 400, 60), Fault("p", "stuck", 800, 40)]
    return generate_fleet(["p"], points, T0, 1000, seed=9,
                          faults=[f for f in faults if f.start + f.length <= points]).readings


def write_csv(path: Path, readings: list[Reading], bad: dict[int, str] | None = None) -> Path:
    lines = ["timestamp," + ",".join(SIGNALS)]
    for i, r in enumerate(readings):
        lines.append((bad or {}).get(i) or f"{r.ts_ms}," + ",".join(repr(r.signals[s]) for s in SIGNALS))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_json(path: Path, readings: list[Reading]) -> Path:
    # signalNames after data: the reader finds it wherever it is
    path.write_bytes(orjson.dumps({"data": [{"timestamp": r.ts_ms, "values": [r.signals[s] for s in SIGNALS]}
                                            for r in readings], "signalNames": list(SIGNALS)}))
    return path


def write_parquet(path: Path, readings: list[Reading], null_ts_at: int | None = None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = [None if i == null_ts_at else r.ts_ms for i, r in enumerate(readings)]
    table = pa.table({"when": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
                      **{s: [r.signals[s] for r in readings] for s in SIGNALS}})
    pq.write_table(table, path, row_group_size=256)
    return path


def streamed(model: Model, readings: list[Reading]) -> list[tuple[int, float, float]]:
    cfg = InferenceConfig("inf", "pumps", "tele", clock="event", idle_timeout_ms=1_000)
    engine = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)
    found = []
    for i in range(0, len(readings), 50):
        out = engine.process_batch([Message("tele", 0, i, b"p", encode_telemetry(readings[i:i + 50]))])
        found += [a for _, a in out.anomalies]
    found += [a for _, a in engine.tick(now_ms=10**13).anomalies]
    return [(a.ts_ms, a.score, a.severity) for a in found]


def results(path: Path) -> dict[str, object]:
    doc = orjson.loads(path.read_bytes())
    jsonschema.Draft202012Validator(schemas.load("detect-result.v1"),
                                    format_checker=jsonschema.FormatChecker()).validate(doc)
    return doc


@pytest.mark.parametrize("form", ["csv", "json", "parquet"])
def test_a_job_writes_what_the_stream_finds(store: ModelStore, model: Model, tmp_path: Path,
                                            form: str) -> None:
    readings = pump(1_000)
    write = {"csv": write_csv, "json": write_json, "parquet": write_parquet}[form]
    source = write(tmp_path / f"line-3.{form}", readings)
    seen: list[float] = []
    done = execute(JobSpec("j1", "pumps", str(source), str(tmp_path / "out")), store, Storage(),
                   on_progress=lambda pct, counts: seen.append(pct), chunk_rows=128)
    assert done.state == "Succeeded", done.reason
    assert done.result == str(tmp_path / "out" / "pumps" / "line-3-results.json")
    doc = results(Path(done.result))
    expected = streamed(model, readings)
    assert len(expected) >= 10
    assert_same_detections([(a["timestamp"], a["score"], a["severity"])
                            for a in doc["anomalies"]], expected)  # type: ignore[index,union-attr]
    assert doc["job_id"] == "j1" and doc["counts"]["rows"] == 1_000  # type: ignore[index]
    assert seen == sorted(seen) and len(seen) == 8 and seen[-1] <= 100
    if form == "csv":  # (ijson and pyarrow read a small file in few gulps)
        assert 0 < seen[0] < seen[-1]
    assert sorted(p.name for p in (tmp_path / "out" / "pumps").iterdir()) == ["line-3-results.json"]


def test_bad_rows_give_partial_success_with_counts(store: ModelStore, tmp_path: Path) -> None:
    readings = pump(300)
    source = write_csv(tmp_path / "in.csv", readings,
                       bad={10: "yesterday,1,2,3,4", 20: f"{T0 + 20_000},1,2,hot,4", 30: "1,2,3,4,5,6,7"})
    done = execute(JobSpec("j2", "pumps", str(source), str(tmp_path / "out")), store, Storage())
    assert done.state == "PartiallySucceeded"
    assert done.counts is not None and done.counts["rows"] == 300 and done.counts["rejected"] == 3
    assert done.rejected == {"by_reason": {"fields": 1, "timestamp": 1, "value": 1}, "examples": [
        {"row": 11, "reason": "timestamp 'yesterday' is neither epoch milliseconds nor ISO-8601"},
        {"row": 21, "reason": "signal 'temp' is not a number: 'hot'"},
        {"row": 31, "reason": "7 fields, the header has 5"}]}
    assert done.result is not None
    assert results(Path(done.result))["rejected"] == done.rejected


def test_a_parquet_row_without_a_timestamp_is_rejected(store: ModelStore, tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "in.parquet", pump(200), null_ts_at=7)
    done = execute(JobSpec("j", "pumps", str(source), str(tmp_path / "out")), store, Storage())
    assert done.state == "PartiallySucceeded"
    assert done.rejected == {"by_reason": {"timestamp": 1},
                             "examples": [{"row": 8, "reason": "no timestamp"}]}


@pytest.mark.parametrize(("spec", "reason"), [
    (JobSpec("j", "valves", "in.csv", "out"), "no model 'valves'"),
    (JobSpec("j", "pumps", "missing.csv", "out"), "cannot read missing.csv: No such file or directory"),
    (JobSpec("j", "pumps", "nosig.csv", "out"), "the header lacks the model's signal(s) vib"),
    (JobSpec("j", "pumps", "allbad.csv", "out"), "every row was rejected (2)"),
    (JobSpec("j", "pumps", "broken.json", "out"), "the input is not valid JSON"),
])
def test_what_cannot_be_read_fails_with_its_reason_and_no_file(
        store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: JobSpec,
        reason: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("ts,current\n0,1\n")
    (tmp_path / "nosig.csv").write_text("ts,current,pressure,temp\n0,1,2,3\n")
    (tmp_path / "allbad.csv").write_text("ts,current,pressure,temp,vib\nx,1,2,3,4\ny,1,2,3,4\n")
    (tmp_path / "broken.json").write_text('{"signalNames": ["current", "pressure", "temp", "vib"], '
                                          '"data": [{"timestamp": 0, "values": [1, 2, 3, 4]}, {"tim')
    done = execute(spec, store, Storage())
    assert done.state == "Failed"
    assert done.reason is not None and reason in done.reason
    assert not (tmp_path / "out" / "pumps").exists() or not any((tmp_path / "out" / "pumps").iterdir())


def test_a_stopped_job_leaves_no_results_file(store: ModelStore, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", pump(1_000))
    calls = []

    def stop_at_third() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise JobStoppedError("canceled")

    with pytest.raises(JobStoppedError):
        execute(JobSpec("j3", "pumps", str(source), str(tmp_path / "out")), store, Storage(),
                checkpoint=stop_at_third, chunk_rows=100)
    assert list((tmp_path / "out" / "pumps").iterdir()) == []


def test_a_job_and_a_synchronous_request_give_the_same_entries(store: ModelStore, tmp_path: Path) -> None:
    from agents.detect import detect

    readings = pump(1_000)
    body = orjson.dumps({"model": "pumps", "signalNames": list(SIGNALS),
                         "data": [{"timestamp": r.ts_ms, "values": [r.signals[s] for s in SIGNALS]}
                                  for r in readings]})
    status, answer = detect(store, body)
    done = execute(JobSpec("j4", "pumps", str(write_csv(tmp_path / "in.csv", readings)),
                           str(tmp_path / "out")), store, Storage(), chunk_rows=97)
    assert status == 200 and done.result is not None
    job = results(Path(done.result))
    assert job["anomalies"] == answer["anomalies"] and len(answer["anomalies"]) >= 10
    assert job["counts"] == answer["counts"]
