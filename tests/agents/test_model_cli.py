"""``assetwatch model``: train from CSV and JSON, failures, the store's checks, list/show/evaluate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner, Result

from agents.cli import cli
from agents.model_store import ModelStore, ModelStoreError
from streams.decision import FlagPolicy
from streams.inference import InferenceConfig
from streams.lifecycle import ModelStatus
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet, pump_series

T0 = 1_767_225_600_000


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"ASSETWATCH_BROKER": None, "ASSETWATCH_MODELS_DIR": None,
                          "ASSETWATCH_TOPIC_PREFIX": None})


def write_pump_csv(path: Path, points: int = 400, seed: int = 0, delimiter: str = ",") -> Path:
    rows = pump_series(points, np.random.default_rng(seed))
    lines = [delimiter.join(("ts", *SIGNALS))]
    lines += [delimiter.join((str(T0 + i * 1000), *(f"{v:.5f}" for v in r))) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def train(runner: CliRunner, models: Path, file: Path, *args: str) -> Result:
    return runner.invoke(cli, ["model", "train", str(file), "--models", str(models), *args])


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("assetwatch: error: "), result.stderr
    return lines[0]


def test_a_model_trained_from_csv_is_completed_loads_and_scores(runner: CliRunner, tmp_path: Path) -> None:
    models = tmp_path / "models"
    result = train(runner, models, write_pump_csv(tmp_path / "pump.csv"), "--name", "pump", "--window", "8")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("pump/1: created") < out.index("pump/1: running") < out.index("pump/1: completed")
    assert "signal" in out and "longest run" in out and "calibration:" in out
    store = ModelStore(models)
    record = store.load_record("pump", 1)
    assert record is not None and record.status is ModelStatus.COMPLETED
    assert record.content_hash == (models / "pump" / "v1.sha256").read_text().strip()
    assert record.algorithm == "mahalanobis" and record.signals == SIGNALS and record.quality is not None
    model = store.load("pump")
    scorer = AssetScorer(InferenceConfig("inf", "pump", "t"), model)
    state = scorer.new_state()
    fleet = generate_fleet(["p1"], points=40, start_ms=T0, interval_ms=1000, seed=9)
    kinds = [scorer.process(state, r).kind for r in fleet.readings]
    assert kinds.count("scored") == 40 - 8


def test_the_flag_policy_is_chosen_at_training_and_kept_in_the_model(
        runner: CliRunner, tmp_path: Path) -> None:
    models = tmp_path / "models"
    result = train(runner, models, write_pump_csv(tmp_path / "pump.csv"), "--name", "pump",
                   "--window", "8", "--min-run", "3", "--exit-margin", "0.05")
    assert result.exit_code == 0, result.output
    assert ModelStore(models).load("pump").flags == FlagPolicy(enter_points=3, exit_margin=0.05)
    assert ModelStore(models).load_record("pump", 1).spec["flags"] == {  # type: ignore[union-attr]
        "enter_points": 3, "exit_margin": 0.05}
    refused = train(runner, models, tmp_path / "pump.csv", "--name", "p2", "--min-run", "0")
    assert refused.exit_code == 2 and "--min-run" in refused.stderr
    adopting = train(runner, models, tmp_path / "pump.csv", "--name", "p3", "--window", "8",
                     "--adopt-after", "120")
    assert adopting.exit_code == 0, adopting.output
    assert ModelStore(models).load("p3").flags == FlagPolicy(adopt_points=120)


def test_a_model_trained_from_json_is_completed(runner: CliRunner, tmp_path: Path) -> None:
    rows = pump_series(300, np.random.default_rng(1))
    doc = {"signalNames": list(SIGNALS),
           "data": [{"timestamp": T0 + i * 500, "values": [None if i % 50 == 7 else float(v) for v in r]}
                    for i, r in enumerate(rows)]}
    path = tmp_path / "pump.json"
    path.write_bytes(orjson.dumps(doc))
    result = train(runner, tmp_path / "m", path, "--name", "js", "--signals", "temp", "--json")
    assert result.exit_code == 0, result.output
    record = orjson.loads(result.stdout)
    assert record["status"] == "completed" and record["algorithm"] == "zscore"
    assert record["interval_ms"] == 500 and record["signals"] == ["temp"]
    assert record["quality"]["signals"][0]["missing"] == 6
    model = ModelStore(tmp_path / "m").load("js")
    assert model.signals == ("temp",) and model.interval_ms == 500


def test_target_far_and_ranges_on_the_command_line(runner: CliRunner, tmp_path: Path) -> None:
    csv = write_pump_csv(tmp_path / "pump.csv", points=800, delimiter=";")
    result = train(runner, tmp_path / "m", csv, "--name", "p", "--target-far", "0.02",
                   "--from", "2026-01-01T00:00:00Z", "--to", str(T0 + 600_000), "--json")
    assert result.exit_code == 0, result.output
    record = orjson.loads(result.stdout)
    assert record["quality"]["slots"] == 600
    assert 1 <= record["sensitivity"] <= 100 and record["achieved_far"] <= 0.02
    text = train(runner, tmp_path / "m", csv, "--name", "p", "--target-far", "0.02").stdout
    assert "sensitivity" in text and "meets it on the held-out" in text


def _text(body: str) -> object:
    def make(path: Path) -> Path:
        path.write_text(body)
        return path

    return make


def _nan_column(path: Path) -> Path:
    path.write_text("ts,a,b\n" + "".join(f"{i * 1000},{i % 5},\n" for i in range(50)))
    return path


FAILURES = [
    ("empty file", _text(""), [], "empty file"),
    ("unknown signal", lambda p: write_pump_csv(p, 60), ["--signals", "temp,flow"], "unknown signal 'flow'"),
    ("non-numeric column", _text("ts,a,s\n0,1,on\n1,2,off\n"), ["--signals", "a,s"],
     "signal 's' is not numeric"),
    ("too few points", lambda p: write_pump_csv(p, 12), ["--window", "16"], "too few points for the window"),
    ("all-NaN signal", _nan_column, [], "signal 'b' has no values"),
    ("no numeric signals", _text("ts,s\n0,on\n1,off\n"), [], "no numeric signals"),
]


@pytest.mark.parametrize(("case", "make", "args", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_failure_is_one_line_and_a_failed_record(
    runner: CliRunner, tmp_path: Path, case: str, make: object, args: list[str], reason: str
) -> None:
    path = make(tmp_path / "data.csv")  # type: ignore[operator]
    result = train(runner, tmp_path / "m", path, "--name", "bad", *args)
    line = one_error_line(result)
    assert reason in line and "model bad/1 failed" in line
    store = ModelStore(tmp_path / "m")
    record = store.load_record("bad", 1)
    assert record is not None and record.status is ModelStatus.FAILED and reason in (record.reason or "")
    assert [s.value for s, _ in record.lifecycle.history] == ["created", "running", "failed"]
    assert store.versions("bad") == []  # no artifact
    with pytest.raises(ModelStoreError):
        store.load("bad", 1)


def test_bad_options_are_one_line_too(runner: CliRunner, tmp_path: Path) -> None:
    csv = write_pump_csv(tmp_path / "pump.csv", 60)
    line = one_error_line(train(runner, tmp_path / "m", csv, "--name", "x", "--from", "1", "--from", "2",
                                "--to", "3"))
    assert "--from" in line
    line = one_error_line(train(runner, tmp_path / "m", csv, "--name", "../up"))
    assert "model name" in line


@pytest.fixture
def trained(runner: CliRunner, tmp_path: Path) -> Path:
    models = tmp_path / "models"
    assert train(runner, models, write_pump_csv(tmp_path / "pump.csv"), "--name", "pump").exit_code == 0
    return models


def test_a_tampered_artifact_is_refused(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    artifact = trained / "pump" / "v1.json"
    artifact.write_bytes(artifact.read_bytes().replace(b'"window_size": 16', b'"window_size": 15'))
    with pytest.raises(ModelStoreError, match="content hash mismatch"):
        ModelStore(trained).load("pump")
    line = one_error_line(runner.invoke(cli, ["model", "evaluate", "pump", str(tmp_path / "pump.csv"),
                                              "--label-column", "vib", "--models", str(trained)]))
    assert "content hash mismatch" in line


def test_a_truncated_artifact_is_refused(trained: Path) -> None:
    artifact = trained / "pump" / "v1.json"
    artifact.write_bytes(artifact.read_bytes()[:100])
    with pytest.raises(ModelStoreError, match="content hash mismatch"):
        ModelStore(trained).load("pump")


def test_an_artifact_and_hash_file_replaced_together_still_disagree_with_the_record(trained: Path) -> None:
    artifact = trained / "pump" / "v1.json"
    body = artifact.read_bytes().replace(b'"window_size": 16', b'"window_size": 15')
    artifact.write_bytes(body)
    (trained / "pump" / "v1.sha256").write_text(hashlib.sha256(body).hexdigest() + "\n")
    with pytest.raises(ModelStoreError, match="mismatch with its record"):
        ModelStore(trained).load("pump")


def test_versions_list_and_show(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    bad = tmp_path / "empty.csv"
    bad.write_text("")
    assert train(runner, trained, bad, "--name", "pump").exit_code == 2
    assert train(runner, trained, tmp_path / "pump.csv", "--name", "pump").exit_code == 0
    listed = runner.invoke(cli, ["model", "list", "--models", str(trained)])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "version", "status"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["pump", "1", "completed"], ["pump", "2", "failed"], ["pump", "3", "completed"]]
    shown = runner.invoke(cli, ["model", "show", "pump", "--version", "2", "--models", str(trained)])
    assert shown.exit_code == 0 and "pump/2: failed: empty file" in shown.stdout
    shown = runner.invoke(cli, ["model", "show", "pump", "--models", str(trained), "--json"])
    assert orjson.loads(shown.stdout)["version"] == 3
    assert ModelStore(trained).load("pump").version == 3
    line = one_error_line(runner.invoke(cli, ["model", "show", "nope", "--models", str(trained)]))
    assert "no record of model 'nope'" in line


def test_list_of_an_empty_store(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["model", "list", "--models", str(tmp_path / "none")])
    assert result.exit_code == 0 and result.stdout.strip() == "no models"


def test_evaluate_on_labelled_data(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    faults = [Fault("p", "spike", 150, 10), Fault("p", "stuck", 300, 60)]
    fleet = generate_fleet(["p"], points=500, start_ms=T0, interval_ms=1000, seed=3, faults=faults)
    spans = [f.ts_range(T0, 1000) for f in faults]
    lines = ["ts," + ",".join(SIGNALS) + ",anomaly"]
    for r in fleet.readings:
        label = int(any(a <= r.ts_ms < b for a, b in spans))
        lines.append(f"{r.ts_ms}," + ",".join(f"{r.signals[s]:.5f}" for s in SIGNALS) + f",{label}")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("\n".join(lines) + "\n")
    args = ["model", "evaluate", "pump", str(labelled), "--models", str(trained)]
    text = runner.invoke(cli, args)
    assert text.exit_code == 0, text.output
    for needle in ("precision", "recall", "F1", "FAR", "MAR", "false-alarm rate on the training data"):
        assert needle in text.stdout
    result = orjson.loads(runner.invoke(cli, [*args, "--json", "--sensitivity", "80"]).stdout)
    assert result["sensitivity"] == 80 and result["tp"] + result["fn"] == 70
    assert result["recall"] > 0 and result["expected_training_far_pct"] is not None
    swept = orjson.loads(runner.invoke(cli, [*args, "--json", "--sweep", "50,80,95"]).stdout)
    assert [x["sensitivity"] for x in swept["sweep"]] == [50, 80, 95]
    at_80 = next(x for x in swept["sweep"] if x["sensitivity"] == 80)
    assert (at_80["tp"], at_80["fp"], at_80["fn"]) == (result["tp"], result["fp"], result["fn"])
    assert swept["sweep"][0]["tp"] <= at_80["tp"] <= swept["sweep"][2]["tp"]
    table = runner.invoke(cli, [*args, "--sweep", "50,80"])
    assert "sensitivity sweep" in table.stdout and " 80: F1" in table.stdout
    bad = one_error_line(runner.invoke(cli, [*args, "--sweep", "50,abc"]))
    assert "--sweep takes sensitivities 1-100" in bad
    line = one_error_line(runner.invoke(cli, [*args, "--label-column", "label"]))
    assert "unknown signal 'label'" in line


def write_fleet_csv(path: Path, assets: tuple[str, ...] = ("p1", "p2", "p3"), points: int = 300,
                    column: str = "asset_id") -> Path:
    """A historian export of several pumps: the same timestamps for each, rows interleaved."""
    series = {a: pump_series(points, np.random.default_rng(i)) for i, a in enumerate(assets)}
    lines = [",".join(("ts", column, *SIGNALS))]
    for i in range(points):
        for a in assets:
            lines.append(",".join((str(T0 + i * 1000), a, *(f"{v:.5f}" for v in series[a][i]))))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_of_several_assets_trains_one_model_on_every_asset(
    runner: CliRunner, tmp_path: Path
) -> None:
    fleet = write_fleet_csv(tmp_path / "fleet.csv")
    result = train(runner, tmp_path / "m", fleet, "--name", "fleet", "--window", "8")
    assert result.exit_code == 0, result.output
    assert "data: 900 rows of 3 assets, each trained apart" in result.stdout
    assert "duplicate timestamp" not in result.stdout  # the same instants of different pumps
    record = ModelStore(tmp_path / "m").load_record("fleet", 1)
    assert record is not None and record.status is ModelStatus.COMPLETED
    assert record.quality is not None and record.quality.assets == 3
    assert record.quality.slots == 900 and record.quality.duplicate_timestamps == 0
    # every pump's points trained, and no window spans two pumps: 3 × (300 − 8) scored
    assert record.calibration["training_points"] == 900
    assert record.signals == SIGNALS  # the asset column is not a signal
    scored = orjson.loads(runner.invoke(cli, [
        "model", "evaluate", "fleet", str(_labelled(fleet)), "--models", str(tmp_path / "m"),
        "--json"]).stdout)["scored"]
    assert scored == 3 * (300 - 8)  # each pump scored with its own window


def _labelled(path: Path) -> Path:
    lines = path.read_text().splitlines()
    out = path.with_name("labelled.csv")
    out.write_text("\n".join([lines[0] + ",anomaly", *(ln + ",0" for ln in lines[1:])]) + "\n")
    return out


def test_the_asset_column_can_be_named_and_a_wrong_name_is_one_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    fleet = write_fleet_csv(tmp_path / "fleet.csv", column="pump")
    result = train(runner, tmp_path / "m", fleet, "--name", "f", "--window", "8",
                   "--asset-column", "pump", "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["quality"]["assets"] == 3
    line = one_error_line(train(runner, tmp_path / "m", fleet, "--name", "f",
                                "--asset-column", "unit"))
    assert "no asset column 'unit' (columns: ts, pump, " in line


def test_a_river_model_trained_from_csv_loads_scores_and_restores(runner: CliRunner, tmp_path: Path) -> None:
    models = tmp_path / "models"
    options = '{"estimator": "HalfSpaceTrees", "params": {"n_trees": 5}, "scaler": "MinMaxScaler"}'
    result = train(runner, models, write_pump_csv(tmp_path / "pump.csv"), "--name", "pump",
                   "--window", "8", "--algorithm", "river", "--detector-options", options)
    assert result.exit_code == 0, result.output
    store = ModelStore(models)
    record = store.load_record("pump", 1)
    assert record is not None and record.algorithm == "river"
    assert record.spec["detector_options"]["estimator"] == "HalfSpaceTrees"
    model = store.load("pump")
    assert model.detector.to_dict()["params"]["n_trees"] == 5
    scorer = AssetScorer(InferenceConfig("inf", "pump", "t"), model)
    state = scorer.new_state()
    fleet = generate_fleet(["p1"], points=60, start_ms=T0, interval_ms=1000, seed=9)
    outcomes = [scorer.process(state, r) for r in fleet.readings[:40]]
    assert [o.kind for o in outcomes].count("scored") == 40 - 8
    assert all(o.severity is not None and 0.0 <= o.severity <= 1.0 for o in outcomes if o.kind == "scored")
    restored = scorer.restore(orjson.loads(orjson.dumps(state.snapshot())))
    for r in fleet.readings[40:]:
        assert scorer.process(restored, r).score == scorer.process(state, r).score


def test_detector_options_that_are_not_a_json_object_are_one_error_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = train(runner, tmp_path / "m", write_pump_csv(tmp_path / "pump.csv"), "--name", "pump",
                   "--algorithm", "river", "--detector-options", "[1, 2]")
    assert "--detector-options must be a JSON object" in one_error_line(result)


def test_options_of_another_detector_fail_the_model_with_one_error_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    """River's options with auto (which picks mahalanobis here) are a user error, not a crash."""
    result = train(runner, tmp_path / "m", write_pump_csv(tmp_path / "pump.csv"), "--name", "pump",
                   "--detector-options", '{"estimator": "LODA"}')
    line = one_error_line(result)
    assert "detector 'mahalanobis' has no option estimator" in line
    record = ModelStore(tmp_path / "m").load_record("pump", 1)
    assert record is not None and record.status is ModelStatus.FAILED


def test_a_model_with_tracked_signals_is_trained_from_csv_and_a_wrong_name_is_one_error_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    options = f'{{"recent": 4, "track": ["{SIGNALS[1]}"]}}'
    result = train(runner, models, write_pump_csv(tmp_path / "pump.csv"), "--name", "pump",
                   "--algorithm", "mahalanobis", "--detector-options", options)
    assert result.exit_code == 0, result.output
    detector = ModelStore(models).load("pump").detector.to_dict()
    assert (detector["recent"], detector["track"]) == (4, [SIGNALS[1]])
    line = one_error_line(train(runner, models, tmp_path / "pump.csv", "--name", "bad",
                                "--algorithm", "mahalanobis",
                                "--detector-options", '{"track": ["nope"]}'))
    assert "track names nope, which is not a signal of the model" in line
