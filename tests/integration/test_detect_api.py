"""``POST /v1/detect`` on a real worker, and the OpenAPI description of the REST surface (SPEC §8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from openapi_spec_validator import validate as validate_openapi

from agents.connection import KafkaConnection
from agents.openapi import openapi_document
from agents.worker import build_worker_app
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet
from tests.detections import assert_same_detections
from tests.integration.harness import START_MS, Pipeline, rest_call

pytestmark = pytest.mark.integration

#: the operator's token, which REST requests that are not reads need (docs/control.md)
API_TOKEN = "batch-api-token-0123456789"


@pytest.fixture(autouse=True)
def _api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers and CLI commands started by these tests know the token."""
    monkeypatch.setenv("ASSETWATCH_API_TOKEN", API_TOKEN)


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    return rest_call(port, method, path, body, API_TOKEN)


def described(doc: dict[str, Any], path: str, method: str, status: int) -> jsonschema.Validator:
    """A validator of the answer the OpenAPI description gives for ``method path → status``."""
    schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def pump(points: int) -> list[Reading]:
    faults = [Fault("p", "spike", 300, 3), Fault("p", "drift", 2_000, 60), Fault("p", "stuck", 5_000, 40)]
    return generate_fleet(["p"], points, START_MS, 1000, seed=21, faults=faults).readings


def table(model_id: str, readings: list[Reading]) -> dict[str, Any]:
    return {"model": model_id, "signalNames": list(SIGNALS),
            "data": [{"timestamp": r.ts_ms, "values": [r.signals[s] for s in SIGNALS]}
                     for r in readings]}


def streamed(model: Model, readings: list[Reading]) -> list[tuple[int, float, float, dict[str, float]]]:
    """The anomalies the streaming engine publishes for the readings, computed in-process."""
    cfg = InferenceConfig("inf", model.model_id, "tele", clock="event", idle_timeout_ms=1_000)
    engine = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)
    found = []
    for i in range(0, len(readings), 100):
        out = engine.process_batch([Message("tele", 0, i, b"p", encode_telemetry(readings[i:i + 100]))])
        found += [a for _, a in out.anomalies]
    found += [a for _, a in engine.tick(now_ms=10**13).anomalies]
    return [(a.ts_ms, a.score, a.severity, dict(a.contributions)) for a in found]


@pytest.fixture
def pipeline(kafka: KafkaConnection, unique: str, tmp_path: Path) -> Pipeline:
    return Pipeline.create(kafka, unique, tmp_path, partitions=2)


def test_detect_on_a_worker(pipeline: Pipeline) -> None:
    doc = openapi_document()
    readings = pump(7_500)  # × 4 signals: exactly 30,000 data points
    with pipeline.worker() as w:
        w.wait_ready(60)
        port = w.web_port
        status, result = call(port, "POST", "/v1/detect", orjson.dumps(table("pumps", readings)))
        assert status == 200, result
        described(doc, "/v1/detect", "post", 200).validate(result)
        expected = streamed(pipeline.model, readings)
        assert len(expected) >= 10
        assert_same_detections([(a["timestamp"], a["score"], a["severity"], a["contributions"])
                                for a in result["anomalies"]], expected)
        assert result["counts"]["rows"] == 7_500

        over = table("pumps", readings)
        over["signalNames"] = ["x"]
        over["data"] = [{"timestamp": i, "values": [1.0]} for i in range(30_001)]
        status, refused = call(port, "POST", "/v1/detect", orjson.dumps(over))
        assert status == 413
        assert "30,001 data points" in refused["error"] and "limit of 30,000" in refused["error"]
        assert "job" in refused["error"]
        described(doc, "/v1/detect", "post", 413).validate(refused)

        status, huge = call(port, "POST", "/v1/detect", b" " * (9 * 1024 * 1024))
        assert status == 413 and "job" in huge["error"]

        bad = table("pumps", readings[:5])
        bad["data"][2]["values"] = [1.0, "high", 3.0, 4.0]
        status, malformed = call(port, "POST", "/v1/detect", orjson.dumps(bad))
        assert (status, malformed) == (400, {"error": "data[2].values[1] must be number or null"})
        described(doc, "/v1/detect", "post", 400).validate(malformed)
        status, not_json = call(port, "POST", "/v1/detect", b"{model")
        assert status == 400 and not_json["error"].startswith("the request body is not JSON")

        status, unknown = call(port, "POST", "/v1/detect", orjson.dumps(table("valves", readings[:5])))
        assert (status, unknown) == (404, {"error": "no model 'valves' in the model store"})

        small = pipeline.workdir / "small.json"
        small.write_bytes(orjson.dumps({k: v for k, v in table("pumps", readings[:400]).items()
                                        if k != "model"}))
        via_cli = subprocess.run([sys.executable, "-m", "agents.cli", "detect", "--model", "pumps",
                                  "--data", str(small), "--url", f"http://127.0.0.1:{port}", "--json"],
                                 capture_output=True, timeout=60, check=False)
        assert via_cli.returncode == 0, via_cli.stderr
        assert orjson.loads(via_cli.stdout) == call(port, "POST", "/v1/detect", orjson.dumps(
            table("pumps", readings[:400])))[1]

        status, served = call(port, "GET", "/v1/openapi.json")
        assert status == 200 and served == orjson.loads(orjson.dumps(doc))


def test_the_openapi_description_is_valid_and_names_every_route(pipeline: Pipeline) -> None:
    doc = openapi_document()
    validate_openapi(doc)
    app, _ = build_worker_app(pipeline.settings, pipeline.kafka)
    served = {path: {m.lower() for m in view.get_methods()} for path, view in app.web.views.items()}
    described_routes = {path: set(ops) for path, ops in doc["paths"].items()}
    # aiohttp serves HEAD wherever GET is served; OpenAPI need not repeat it
    assert {p: ms - {"head"} for p, ms in served.items()} == described_routes
