"""A model trained from each input format with ``assetwatch model train`` scores the stream."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from agents.cli import cli
from agents.connection import KafkaConnection
from agents.model_store import ModelStore
from streams.simulate import SIGNALS, Fault, generate_fleet, training_rows
from tests.integration.harness import INTERVAL_MS, START_MS, Pipeline

pytestmark = pytest.mark.integration


def write_csv(path: Path, rows: np.ndarray) -> None:
    lines = ["timestamp," + ",".join(SIGNALS)]
    lines += [f"{START_MS + i * INTERVAL_MS}," + ",".join(f"{v:.6f}" for v in r)
              for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def write_json(path: Path, rows: np.ndarray) -> None:
    path.write_bytes(orjson.dumps({
        "signalNames": list(SIGNALS),
        "data": [{"timestamp": START_MS + i * INTERVAL_MS, "values": [float(v) for v in r]}
                 for i, r in enumerate(rows)],
    }))


@pytest.mark.parametrize(("fmt", "writer"), [("csv", write_csv), ("json", write_json)])
def test_a_model_trained_from_a_file_scores_the_stream_end_to_end(
    kafka: KafkaConnection, unique: str, tmp_path: Path, fmt: str, writer: object
) -> None:
    data = tmp_path / f"train.{fmt}"
    writer(data, training_rows(1, 3000, seed=21))  # type: ignore[operator]
    models = tmp_path / "models"
    result = CliRunner(env={"ASSETWATCH_BROKER": None}).invoke(
        cli, ["model", "train", str(data), "--name", "pumps", "--window", "8",
              "--models", str(models)])
    assert result.exit_code == 0, result.output
    assert "pumps/1: completed" in result.output
    model = ModelStore(models).load("pumps")

    p = Pipeline.create(kafka, unique, tmp_path, model=model, models_dir=models)
    readings = generate_fleet(["pump-x", "pump-y"], 120, START_MS, INTERVAL_MS, seed=4,
                              faults=[Fault("pump-y", "spike", 70, 2)]).readings
    expected = p.expected_keys(readings)
    assert f"inf/pump-y/{START_MS + 70 * INTERVAL_MS}" in expected
    assert sorted(p.scored_keys(readings, expected)) == sorted(expected)


def test_a_river_model_trained_from_a_file_scores_the_stream_end_to_end(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    """The worker's output on the broker is exactly the pure scorer's (snapshots included)."""
    data = tmp_path / "train.csv"
    write_csv(data, training_rows(1, 3000, seed=21))
    models = tmp_path / "models"
    options = '{"estimator": "HalfSpaceTrees", "scaler": "MinMaxScaler", "params": {"n_trees": 5}}'
    result = CliRunner(env={"ASSETWATCH_BROKER": None}).invoke(
        cli, ["model", "train", str(data), "--name", "pumps", "--window", "8", "--models", str(models),
              "--algorithm", "river", "--detector-options", options])
    assert result.exit_code == 0, result.output
    model = ModelStore(models).load("pumps")
    assert model.detector.kind == "river"

    p = Pipeline.create(kafka, unique, tmp_path, model=model, models_dir=models)
    # sensitivity 90 (the top 10 % of training scores): enough anomalies to compare
    p.inference = replace(p.inference, sensitivity=90)
    (tmp_path / "inferences.json").write_bytes(orjson.dumps([p.inference.to_dict()]))
    readings = generate_fleet(["pump-x", "pump-y"], 120, START_MS, INTERVAL_MS, seed=4,
                              faults=[Fault("pump-y", "spike", 70, 2)]).readings
    expected = p.expected_keys(readings)
    assert len(expected) >= 10
    assert sorted(p.scored_keys(readings, expected)) == sorted(expected)
