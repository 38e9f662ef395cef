"""Detection jobs through real workers on the session broker (SPEC §8): the CLI and REST create
them, a worker runs them, the job-status topic tells how they end, files hold the results."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

import schemas
from agents.broker import free_port
from agents.jobs import JobClient
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.jobs import JobState
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet
from tests.detections import assert_same_detections
from tests.integration.harness import START_MS, Pipeline, rest_call, wait_for

pytestmark = pytest.mark.integration

#: the operator's token, which REST requests that are not reads need (docs/control.md)
API_TOKEN = "batch-api-token-0123456789"


@pytest.fixture(autouse=True)
def _api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers and CLI commands started by these tests know the token."""
    monkeypatch.setenv("ASSETWATCH_API_TOKEN", API_TOKEN)


@pytest.fixture
def pipeline(kafka: Any, unique: str, tmp_path: Path) -> Pipeline:
    return Pipeline.create(kafka, unique, tmp_path, partitions=2)


def pump(points: int, seed: int = 4) -> list[Reading]:
    faults = [Fault("p", "spike", 150, 3), Fault("p", "drift", 500, 60), Fault("p", "stuck", 900, 40)]
    return generate_fleet(["p"], points, START_MS, 1000, seed=seed,
                          faults=[f for f in faults if f.start + f.length <= points]).readings


def write_csv(path: Path, readings: list[Reading], bad: dict[int, str] | None = None) -> Path:
    with path.open("w") as fh:
        fh.write("timestamp," + ",".join(SIGNALS) + "\n")
        for i, r in enumerate(readings):
            fh.write((bad or {}).get(i) or f"{r.ts_ms}," + ",".join(repr(r.signals[s]) for s in SIGNALS))
            fh.write("\n")
    return path


def big_csv(path: Path, rows: int) -> Path:
    """A long healthy series, written fast (a line per row, values cycling)."""
    base = [f"{10 + 8 * 0.7 + 0.1 * (i % 7):.3f},{3 + 2 * 0.7 + 0.02 * (i % 5):.3f},"
            f"{55 + 15 * 0.7 + 0.1 * (i % 11):.3f},{2 + 0.8 * 0.7 + 0.05 * (i % 3):.3f}" for i in range(1000)]
    with path.open("w") as fh:
        fh.write("timestamp," + ",".join(SIGNALS) + "\n")
        fh.writelines(f"{START_MS + 1000 * i},{base[i % 1000]}\n" for i in range(rows))
    return path


def streamed(model: Model, readings: list[Reading]) -> list[tuple[int, float, float]]:
    """What the streaming engine publishes for the same readings, computed in-process."""
    cfg = InferenceConfig("inf", model.model_id, "tele", clock="event", idle_timeout_ms=1_000)
    engine = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)
    found = []
    for i in range(0, len(readings), 100):
        out = engine.process_batch([Message("tele", 0, i, b"p", encode_telemetry(readings[i:i + 100]))])
        found += [a for _, a in out.anomalies]
    found += [a for _, a in engine.tick(now_ms=10**13).anomalies]
    return [(a.ts_ms, a.score, a.severity) for a in found]


def job(pipeline: Pipeline, *args: str, timeout: float = 120,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "job", *args, "--broker", pipeline.kafka.bootstrap,
         "--topic-prefix", pipeline.settings.topics.prefix],
        capture_output=True, text=True, timeout=timeout, check=False, input=stdin,
        env={**os.environ, **pipeline.kafka.env()})


def results(path: Path | str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(Path(path).read_bytes())
    jsonschema.Draft202012Validator(schemas.load("detect-result.v1")).validate(doc)
    return doc


@pytest.fixture
def client(pipeline: Pipeline) -> Iterator[JobClient]:
    c = JobClient(pipeline.kafka, pipeline.settings)
    yield c
    c.close()


def state_of(client: JobClient, job_id: str) -> JobState | None:
    return client.view.get(job_id)


def test_a_job_over_a_local_csv_finds_what_the_stream_finds(pipeline: Pipeline, tmp_path: Path) -> None:
    readings = pump(1_200)
    source = write_csv(tmp_path / "line-3.csv", readings)
    with pipeline.worker() as w:
        w.wait_ready(60)
        done = job(pipeline, "create", "--model", "pumps", "--input", str(source),
                   "--output", str(tmp_path / "out"), "--wait", "--json")
        assert done.returncode == 0, done.stderr
        final = orjson.loads(done.stdout)
        schemas.validator("job-status.v1")(final)
        assert final["state"] == "Succeeded" and final["attempt"] == 1
        assert [s for s, _ in final["history"]] == ["Accepted", "InProgress", "Succeeded"]
        assert final["result"] == str(tmp_path / "out" / "pumps" / "line-3-results.json")
        doc = results(final["result"])
        expected = streamed(pipeline.model, readings)
        assert len(expected) >= 10
        assert_same_detections([(a["timestamp"], a["score"], a["severity"])
                                for a in doc["anomalies"]], expected)
        assert doc["counts"]["rows"] == final["counts"]["rows"] == 1_200
        listed = job(pipeline, "list")
        assert final["job_id"] in listed.stdout and "Succeeded" in listed.stdout
        shown = job(pipeline, "show", final["job_id"])
        assert "history: Accepted" in shown.stdout and "rows 1200" in shown.stdout


def test_bad_rows_give_partial_success_with_counts_and_reasons(pipeline: Pipeline, tmp_path: Path) -> None:
    readings = pump(400)
    source = write_csv(tmp_path / "in.csv", readings,
                       bad={5: "soon,1,2,3,4", 50: f"{START_MS + 50_000},1,2,3,loud"})
    with pipeline.worker() as w:
        w.wait_ready(60)
        done = job(pipeline, "create", "--model", "pumps", "--input", str(source),
                   "--output", str(tmp_path / "out"), "--name", "line-9", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    final = orjson.loads(done.stdout)
    assert final["state"] == "PartiallySucceeded"
    assert final["counts"]["rejected"] == 2 and final["counts"]["rows"] == 400
    assert final["rejected"]["by_reason"] == {"timestamp": 1, "value": 1}
    assert final["rejected"]["examples"][1] == {"row": 51, "reason": "signal 'vib' is not a number: 'loud'"}
    assert results(tmp_path / "out" / "pumps" / "line-9-results.json")["rejected"] == final["rejected"]


def test_what_cannot_be_read_fails_with_the_reason(pipeline: Pipeline, tmp_path: Path) -> None:
    with pipeline.worker() as w:
        w.wait_ready(60)
        missing = job(pipeline, "create", "--model", "pumps", "--input", str(tmp_path / "nothing.csv"),
                      "--output", str(tmp_path / "out"), "--wait", "--json")
        unknown = job(pipeline, "create", "--model", "valves", "--input", str(tmp_path / "nothing.csv"),
                      "--output", str(tmp_path / "out"), "--wait", "--json")
    assert missing.returncode == 1
    failed = orjson.loads(missing.stdout)
    assert failed["state"] == "Failed"
    assert failed["reason"] == f"cannot read {tmp_path / 'nothing.csv'}: No such file or directory"
    assert orjson.loads(unknown.stdout)["reason"].startswith("no model 'valves'")
    assert not (tmp_path / "out" / "pumps").exists()


def test_cancel_mid_job_stops_it_and_leaves_no_results(pipeline: Pipeline, client: JobClient,
                                                       tmp_path: Path) -> None:
    source = big_csv(tmp_path / "long.csv", 400_000)
    with pipeline.worker() as w:
        w.wait_ready(60)
        created = job(pipeline, "create", "--model", "pumps", "--input", str(source),
                      "--output", str(tmp_path / "out"))
        job_id = created.stdout.strip()
        wait_for(lambda: (s := state_of(client, job_id)) is not None and s.state == "InProgress"
                 and s.progress_pct > 0, 60, "the job under way")
        assert job(pipeline, "cancel", job_id).stdout.strip() == f"cancel requested for {job_id}"
        final = client.wait(job_id, 60)
        assert final.state == "Canceled" and final.reason == "canceled on request"
        assert 0 < final.progress_pct < 100
        again = job(pipeline, "cancel", job_id)
        assert again.returncode == 2
        assert again.stderr.strip() == \
            f"assetwatch: error: job {job_id} is already Canceled: nothing to cancel"
    assert list((tmp_path / "out" / "pumps").iterdir()) == []  # no results, no partial file


def test_a_worker_killed_mid_job_leaves_it_to_the_next(pipeline: Pipeline, client: JobClient,
                                                      tmp_path: Path) -> None:
    source = big_csv(tmp_path / "long.csv", 300_000)
    first = pipeline.worker("first.log")
    first.start()
    try:
        first.wait_ready(60)
        job_id = job(pipeline, "create", "--model", "pumps", "--input", str(source),
                     "--output", str(tmp_path / "out")).stdout.strip()
        wait_for(lambda: (s := state_of(client, job_id)) is not None and s.state == "InProgress"
                 and s.progress_pct > 0, 60, "the job under way")
    finally:
        first.kill()
    assert state_of(client, job_id).state == "InProgress"  # type: ignore[union-attr]
    with pipeline.worker("second.log") as second:
        second.wait_ready(60)
        final = client.wait(job_id, 120)
    assert final.state == "Succeeded" and final.attempt == 2
    assert results(tmp_path / "out" / "pumps" / "long-results.json")["counts"]["rows"] == 300_000
    assert sorted(p.name for p in (tmp_path / "out" / "pumps").iterdir()) == ["long-results.json"]


def rest(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return rest_call(port, method, path, body, API_TOKEN)


def test_jobs_over_rest(pipeline: Pipeline, client: JobClient, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "line-5.csv", pump(300))
    with pipeline.worker() as w:
        w.wait_ready(60)
        port = w.web_port
        status, accepted = rest(port, "POST", "/v1/jobs", {"model": "pumps", "input": str(source),
                                                         "output": str(tmp_path / "out")})
        assert status == 202 and accepted["state"] == "Accepted"
        final = client.wait(accepted["job_id"], 60)
        assert final.state == "Succeeded"
        # the worker's view of the status topic catches up with its own last record
        wait_for(lambda: rest(port, "GET", f"/v1/jobs/{final.job_id}") == (200, final.to_record()),
                 10, "the final state over REST")
        status, listed = rest(port, "GET", "/v1/jobs")
        assert [j["job_id"] for j in listed] == [final.job_id]
        assert rest(port, "POST", f"/v1/jobs/{final.job_id}/cancel")[0] == 409
        assert rest(port, "GET", "/v1/jobs/job-none")[0] == 404
        status, bad = rest(port, "POST", "/v1/jobs", {"model": "pumps", "input": "x.csv"})
        assert (status, bad) == (400, {"error": "missing field(s): output"})


# --------------------------------------------------------------------------- S3


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local S3-compatible server (moto) on 127.0.0.1; the environment points boto3 at it
    (the worker processes inherit it)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for name, value in {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    import boto3

    try:
        yield boto3.client("s3")
    finally:
        server.stop()


def test_jobs_read_and_write_object_storage(pipeline: Pipeline, s3: Any, tmp_path: Path) -> None:
    readings = pump(1_000, seed=8)
    s3.create_bucket(Bucket="plant-data")
    s3.create_bucket(Bucket="plant-results")
    s3.upload_file(str(write_csv(tmp_path / "a.csv", readings)), "plant-data", "2026/line-3.csv")
    table = {"signalNames": list(SIGNALS),
             "data": [{"timestamp": r.ts_ms, "values": [r.signals[s] for s in SIGNALS]} for r in readings]}
    s3.put_object(Bucket="plant-data", Key="2026/line-4.json", Body=orjson.dumps(table))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"timestamp": pa.array([r.ts_ms for r in readings], pa.timestamp("ms")),
                             **{s: [r.signals[s] for r in readings] for s in SIGNALS}}),
                   tmp_path / "c.parquet", row_group_size=300)
    s3.upload_file(str(tmp_path / "c.parquet"), "plant-data", "2026/line-5.parquet")
    expected = streamed(pipeline.model, readings)
    with pipeline.worker() as w:
        w.wait_ready(60)
        for key, name in (("2026/line-3.csv", "line-3"), ("2026/line-4.json", "line-4"),
                          ("2026/line-5.parquet", "line-5")):
            done = job(pipeline, "create", "--model", "pumps", "--input", f"s3://plant-data/{key}",
                       "--output", "s3://plant-results/detect", "--wait", "--json")
            assert done.returncode == 0, done.stderr
            final = orjson.loads(done.stdout)
            assert final["state"] == "Succeeded", final
            assert final["result"] == f"s3://plant-results/detect/pumps/{name}-results.json"
            body = s3.get_object(Bucket="plant-results", Key=f"detect/pumps/{name}-results.json")["Body"]
            doc = orjson.loads(body.read())
            assert_same_detections([(a["timestamp"], a["score"], a["severity"])
                                    for a in doc["anomalies"]], expected)
        gone = job(pipeline, "create", "--model", "pumps", "--input", "s3://no-such-bucket/x.csv",
                   "--output", "s3://plant-results/detect", "--wait", "--json")
        assert orjson.loads(gone.stdout)["reason"] == \
            "cannot read s3://no-such-bucket/x.csv: no such bucket 'no-such-bucket' (NoSuchBucket)"
        piped = job(pipeline, "create", "--model", "pumps", "--input", "-", "--name", "piped",
                    "--output", "s3://plant-results/detect", "--wait", "--json",
                    stdin=(tmp_path / "a.csv").read_text())
        assert orjson.loads(piped.stdout)["state"] == "Succeeded", piped.stdout
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="plant-results")["Contents"]]
    # standard input was staged beside the results for the worker, and removed once done
    assert sorted(keys) == ["detect/pumps/line-3-results.json", "detect/pumps/line-4-results.json",
                            "detect/pumps/line-5-results.json", "detect/pumps/piped-results.json"]
