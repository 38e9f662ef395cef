"""The model registry topic: a model trained with --broker is published and listed from it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from agents.cli import cli
from agents.connection import KafkaConnection
from agents.model_store import ModelRecord
from agents.registry import Registry
from agents.settings import Settings, TopicNames
from streams.lifecycle import ModelStatus
from streams.simulate import SIGNALS, pump_series

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000


def pump_csv(path: Path, points: int = 300) -> Path:
    rows = pump_series(points, np.random.default_rng(0))
    lines = ["ts," + ",".join(SIGNALS)]
    lines += [f"{T0 + i * 1000}," + ",".join(f"{v:.5f}" for v in r) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_until(registry: Registry, key: str, status: ModelStatus, timeout_s: float = 20.0) -> ModelRecord:
    """Poll the registry until ``key`` has reached ``status`` (deadline-bounded)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, ModelRecord] = {}
    while time.monotonic() < deadline:
        seen = registry.read()
        if key in seen and seen[key].status is status:
            return seen[key]
    raise AssertionError(f"{key} not {status.value} in the registry within {timeout_s} s: {sorted(seen)}")


def test_a_model_trained_with_a_broker_is_in_the_registry_and_listed(
    kafka_bootstrap: str, kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    runner = CliRunner(env={"ASSETWATCH_BROKER": None, "ASSETWATCH_MODELS_DIR": None,
                            "ASSETWATCH_TOPIC_PREFIX": None})
    common = ["--broker", kafka_bootstrap, "--topic-prefix", unique]
    csv = pump_csv(tmp_path / "pump.csv")
    result = runner.invoke(cli, ["model", "train", str(csv), "--name", "pump", "--window", "8",
                                 "--models", str(tmp_path / "a"), *common])
    assert result.exit_code == 0, result.output
    assert f"published pump/1 to {unique}.models" in result.stdout
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    failed = runner.invoke(cli, ["model", "train", str(empty), "--name", "pump",
                                 "--models", str(tmp_path / "a"), *common])
    assert failed.exit_code == 2

    registry = Registry(kafka, Settings(topics=TopicNames(unique)))
    record = read_until(registry, "pump/1", ModelStatus.COMPLETED)
    assert record.signals == SIGNALS and record.content_hash
    assert read_until(registry, "pump/2", ModelStatus.FAILED).reason == "empty file: no header and no data"

    # another machine: an empty directory store, the registry as the source of truth
    listed = runner.invoke(cli, ["model", "list", "--models", str(tmp_path / "b"), *common])
    assert listed.exit_code == 0, listed.output
    rows = [line.split()[:3] for line in listed.stdout.splitlines()[1:]]
    assert rows == [["pump", "1", "completed"], ["pump", "2", "failed"]]
    shown = runner.invoke(cli, ["model", "show", "pump", "--version", "1", "--json",
                                "--models", str(tmp_path / "b"), *common])
    assert orjson.loads(shown.stdout)["content_hash"] == record.content_hash
    # without a broker, the (empty) directory store alone answers
    alone = runner.invoke(cli, ["model", "list", "--models", str(tmp_path / "b")])
    assert alone.stdout.strip() == "no models"


def test_reading_an_empty_registry_returns_nothing(kafka: KafkaConnection, unique: str) -> None:
    assert Registry(kafka, Settings(topics=TopicNames(unique))).read() == {}


def test_a_model_of_several_assets_is_registered_with_every_asset_trained(
    kafka_bootstrap: str, kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    from tests.agents.test_model_cli import write_fleet_csv

    runner = CliRunner(env={"ASSETWATCH_BROKER": None, "ASSETWATCH_MODELS_DIR": None,
                            "ASSETWATCH_TOPIC_PREFIX": None})
    fleet = write_fleet_csv(tmp_path / "fleet.csv", assets=("p1", "p2"), points=200)
    result = runner.invoke(cli, ["model", "train", str(fleet), "--name", "fleet", "--window", "8",
                                 "--models", str(tmp_path / "a"), "--broker", kafka_bootstrap,
                                 "--topic-prefix", unique])
    assert result.exit_code == 0, result.output
    record = read_until(Registry(kafka, Settings(topics=TopicNames(unique))), "fleet/1",
                        ModelStatus.COMPLETED)
    assert record.quality is not None and record.quality.assets == 2
    assert record.quality.duplicate_timestamps == 0
    assert record.calibration["training_points"] == 400  # both pumps, not the last one alone
