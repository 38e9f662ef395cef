"""``assetwatch detect``: a small table scored at once, as the stream scores it; limits and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from click.testing import CliRunner, Result

import schemas
from agents.cli import cli
from agents.model_store import ModelStore
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
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
def models(tmp_path: Path, model: Model) -> Path:
    ModelStore(tmp_path / "models").save(model)
    return tmp_path / "models"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"ASSETWATCH_MODELS_DIR": None})


def pump(points: int) -> list[Reading]:
    faults = [Fault("p", "spike", 100, 3), Fault("p", "drift", 200, 40)]
    return generate_fleet(["p"], points, T0, 1000, seed=9,
                          faults=[f for f in faults if f.start + f.length <= points]).readings


def table(readings: list[Reading]) -> dict[str, Any]:
    return {"signalNames": list(SIGNALS),
            "data": [{"timestamp": r.ts_ms, "values": [r.signals[s] for s in SIGNALS]}
                     for r in readings]}


def run(runner: CliRunner, models: Path, data: Path | str, *args: str, stdin: bytes | None = None) -> Result:
    return runner.invoke(cli, ["detect", "--model", "pumps", "--data", str(data), "--models", str(models),
                               *args], input=stdin)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("assetwatch: error: "), result.stderr
    return lines[0]


def streamed_anomalies(model: Model, readings: list[Reading]) -> list[tuple[int, float, float]]:
    """What the streaming engine publishes for the same readings (event time, one asset)."""
    cfg = InferenceConfig("inf", "pumps", "tele", clock="event", idle_timeout_ms=1_000)
    engine = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)
    found = [a for i, r in enumerate(readings)
             for _, a in engine.process_batch([Message("tele", 0, i, b"p", encode_telemetry([r]))]).anomalies]
    found += [a for _, a in engine.tick(now_ms=10**13).anomalies]
    return [(a.ts_ms, a.score, a.severity) for a in found]


def test_detect_answers_what_the_stream_finds(runner: CliRunner, models: Path, model: Model,
                                             tmp_path: Path) -> None:
    readings = pump(400)
    data = tmp_path / "t.json"
    data.write_bytes(orjson.dumps(table(readings)))
    result = run(runner, models, data, "--json")
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    jsonschema.Draft202012Validator(schemas.load("detect-result.v1")).validate(doc)
    expected = streamed_anomalies(model, readings)
    assert len(expected) >= 5
    assert_same_detections([(a["timestamp"], a["score"], a["severity"]) for a in doc["anomalies"]],
                           expected)
    assert doc["counts"]["scored"] + doc["counts"]["warming_up"] == 400


def test_csv_from_standard_input_gives_the_same_answer_as_json(runner: CliRunner, models: Path,
                                                              tmp_path: Path) -> None:
    readings = pump(300)
    data = tmp_path / "t.json"
    data.write_bytes(orjson.dumps(table(readings)))
    csv = "timestamp;" + ";".join(SIGNALS) + "\n" + "".join(
        f"{r.ts_ms};" + ";".join(repr(r.signals[s]) for s in SIGNALS) + "\n" for r in readings)
    from_csv = run(runner, models, "-", "--json", stdin=csv.encode())
    from_json = run(runner, models, data, "--json")
    assert from_csv.exit_code == 0, from_csv.output
    assert orjson.loads(from_csv.stdout) == orjson.loads(from_json.stdout)
    text = run(runner, models, data)
    assert "2026-01-01T00:01:40.000Z" in text.stdout and "vib" in text.stdout  # the spike


def test_30000_points_are_scored_and_30001_refused_pointing_to_jobs(runner: CliRunner, models: Path,
                                                                    tmp_path: Path) -> None:
    readings = pump(7_500)  # × 4 signals = 30,000 data points
    data = tmp_path / "t.json"
    data.write_bytes(orjson.dumps(table(readings)))
    result = run(runner, models, data, "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["counts"]["rows"] == 7_500
    # 30,001 data points: 30,001 timestamps of one signal
    one = {"signalNames": ["x"], "data": [{"timestamp": i, "values": [0.0]} for i in range(30_001)]}
    data.write_bytes(orjson.dumps(one))
    line = one_error_line(run(runner, models, data))
    assert "30,001 data points (30,001 timestamps × 1 signal) is over the synchronous limit of 30,000" \
        in line
    assert "assetwatch job create" in line and "(HTTP 413)" in line


@pytest.mark.parametrize(("doc", "message"), [
    ({"signalNames": list(SIGNALS), "data": [{"timestamp": 0, "values": [1, 2, 3, "x"]}]},
     "data[0].values[3] must be number or null (HTTP 400)"),
    ({"signalNames": ["temp"], "data": []},
     "signalNames: signalNames lacks the model's signal(s) current, pressure, vib"),
    ({"signalNames": list(SIGNALS), "data": [{"timestamp": "noon", "values": [1, 2, 3, 4]}]},
     "data[0].timestamp: timestamp 'noon' is neither epoch milliseconds nor ISO-8601 (HTTP 400)"),
])
def test_a_malformed_table_is_one_line_naming_the_field(runner: CliRunner, models: Path, tmp_path: Path,
                                                       doc: dict[str, Any], message: str) -> None:
    data = tmp_path / "t.json"
    data.write_bytes(orjson.dumps(doc))
    assert message in one_error_line(run(runner, models, data))


def test_an_unknown_model_is_404(runner: CliRunner, models: Path, tmp_path: Path) -> None:
    data = tmp_path / "t.json"
    data.write_bytes(orjson.dumps(table(pump(20))))
    result = runner.invoke(cli, ["detect", "--model", "valves", "--data", str(data),
                                 "--models", str(models)])
    assert one_error_line(result) == "assetwatch: error: no model 'valves' in the model store (HTTP 404)"
    result = runner.invoke(cli, ["detect", "--model", "pumps", "--version", "3", "--data", str(data),
                                 "--models", str(models)])
    assert "model 'pumps' has no version 3 (versions: 1) (HTTP 404)" in one_error_line(result)
