"""The control plane through a real worker on the session broker (SPEC §5.1, §5.4).

Inferences are scheduled and controlled with the real CLI (a subprocess) and the worker's
REST API; outcomes are read from the status topics and the anomalies topic.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.connection import KafkaConnection
from agents.control_client import ControlClient
from agents.model_store import ModelStore
from streams.model import ModelParams, fit_model
from streams.records import Reading
from streams.simulate import SIGNALS, generate_fleet, training_rows
from tests.integration.harness import Pipeline, rest_call, wait_for

pytestmark = pytest.mark.integration

INTERVAL_MS = 100


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def cli(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "inference", *args, "--broker",
         pipeline.kafka.bootstrap, "--topic-prefix", pipeline.settings.topics.prefix],
        capture_output=True, text=True, timeout=90, check=False)


def cli_json(pipeline: Pipeline, *args: str) -> Any:
    done = cli(pipeline, *args, "--json")
    assert done.returncode in (0, 1), done.stderr
    return orjson.loads(done.stdout)


@pytest.fixture
def pipeline(kafka: KafkaConnection, unique: str, tmp_path: Path) -> Pipeline:
    """A deployment with a fast (100 ms) model in its store and no inference declared."""
    model = fit_model(training_rows(4, 1500, seed=11),
                      ModelParams(model_id="pumps", signals=SIGNALS, window_size=8,
                                  interval_ms=INTERVAL_MS))
    p = Pipeline.create(kafka, unique, tmp_path, partitions=2, model=model)
    (tmp_path / "inferences.json").write_bytes(b"[]")
    return p


def readings_around(start_ms: int, before: int, after: int, spike_at: int | None = None,
                    asset: str = "pump-1") -> list[Reading]:
    """Readings of one pump every 100 ms, ``before`` of them before ``start_ms``."""
    base = generate_fleet([asset], before + after, 0, INTERVAL_MS, seed=5).readings
    out = []
    for i, r in enumerate(base):
        signals = dict(r.signals)
        if spike_at is not None and i == before + spike_at:
            signals = {s: v * 8 + 50 for s, v in signals.items()}
        out.append(Reading(asset, start_ms + (i - before) * INTERVAL_MS, signals))
    return out


def state_of(client: ControlClient, name: str) -> Any:
    return client.states().get(name)


def test_a_scheduled_inference_scores_from_its_start_with_a_window_prefilled_from_history(
        pipeline: Pipeline) -> None:
    client = ControlClient(pipeline.kafka, pipeline.settings)
    with pipeline.worker() as w:
        w.wait_ready(60)
        start = (now_ms() // 1000 + 3) * 1000  # a whole second, 2-3 s ahead
        history = readings_around(start, before=20, after=0)
        pipeline.send(history)  # already on the topic when the inference is created
        # a 2 s data delay offset: the live points below are sent as their start passes, and
        # must not find their slots finalised (late) by the time they arrive
        done = cli(pipeline, "create", "line-3", "--model", "pumps", "--topic",
                   pipeline.settings.topics.telemetry, "--start", str(start), "--delay", "2")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("accepted: created; scoring from")
        live = readings_around(start, before=0, after=20, spike_at=0)
        wait_for(lambda: now_ms() > start, 10, "the start time")
        pipeline.send(live)
        spike_key = f"line-3/pump-1/{start}"
        wait_for(lambda: spike_key in pipeline.anomaly_keys(), 30,
                 "the spike at the start scored at once, its window pre-filled")
        shown = wait_for(lambda: (s := cli_json(pipeline, "show", "line-3"))["progress"]
                         ["points_scored"] >= 19 and s, 30, "progress published")
        assert shown["state"]["status"] == "Active"
        assert shown["progress"]["warming_up"] == 0
        assert shown["progress"]["last_finalised"] >= start
        text = cli(pipeline, "show", "line-3").stdout
        for part in ("line-3  Active  (epoch 1)", "model:            pumps v1", "last finalised:",
                     "watermark lag:", "points scored:"):
            assert part in text
    keys = pipeline.anomaly_keys()
    assert not [k for k in keys if int(k.rsplit("/", 1)[1]) < start], "history is never scored"
    assert state_of(client, "line-3").status == "Active"


def test_pause_restart_and_delete_move_the_status_and_report_the_paused_period_as_a_gap(
        pipeline: Pipeline) -> None:
    client = ControlClient(pipeline.kafka, pipeline.settings)
    topic = pipeline.settings.topics.telemetry
    with pipeline.worker() as w:
        w.wait_ready(60)
        assert cli(pipeline, "create", "inf-a", "--model", "pumps", "--topic", topic).returncode == 0
        rejected = cli(pipeline, "delete", "inf-a")
        assert rejected.returncode == 1
        assert "delete needs a paused inference; inf-a is Active" in rejected.stderr
        assert cli(pipeline, "pause", "inf-a").returncode == 0
        assert state_of(client, "inf-a").status == "UserPaused"
        wait_for(lambda: not w.status()["inferences"], 10, "the worker stops the paused inference")
        assert cli(pipeline, "restart", "inf-a").returncode == 0
        restarted = state_of(client, "inf-a")
        assert (restarted.status, restarted.epoch) == ("Active", 2)
        wait_for(lambda: [i["epoch"] for i in w.status()["inferences"]] == [2], 10,
                 "the worker runs the new epoch")
        gaps = [e for e in client.events("inf-a") if e["kind"] == "gap"]
        assert len(gaps) == 1 and gaps[0]["reason"] == "paused"
        assert gaps[0]["to"] == restarted.active_from_ms > gaps[0]["from"]
        assert cli(pipeline, "pause", "inf-a").returncode == 0
        assert cli(pipeline, "delete", "inf-a").returncode == 0
        assert cli_json(pipeline, "list") == []
        results = [(e["type"], e["accepted"]) for e in client.events("inf-a")
                   if e["kind"] == "command_result"]
    assert results == [("create", True), ("delete", False), ("pause", True), ("restart", True),
                       ("pause", True), ("delete", True)]


def test_scheduling_is_validated_and_every_failure_has_a_readable_reason(pipeline: Pipeline) -> None:
    topic = pipeline.settings.topics.telemetry
    store = ModelStore(pipeline.settings.models_dir)
    flow_model = fit_model(training_rows(2, 400, seed=1)[:, :2],
                           ModelParams(model_id="flow", signals=("flow", "torque"), window_size=4))
    store.save(flow_model)
    with pipeline.worker() as w:
        w.wait_ready(60)
        pipeline.send(readings_around(now_ms(), before=5, after=0))  # the topic's signals show
        wait_for(lambda: w.status()["counts"].get("received", 0) >= 5, 20, "readings seen")
        assert cli(pipeline, "create", "taken", "--model", "pumps", "--topic", topic).returncode == 0
        cases = {
            ("--model", "nope", "--topic", topic): "no model 'nope'",
            ("--model", "pumps", "--topic", topic, "--start", "2020-01-01T00:00:00Z"):
                "is in the past",
            ("--model", "pumps", "--topic", "no-such-topic"): "unknown topic 'no-such-topic'",
            ("--model", "pumps", "--topic", topic, "--delay", "-5"):
                "data delay offset must be a number of seconds from 0 to 604800, got -5.0",
            ("--model", "flow", "--topic", topic):
                "needs signal(s) flow, torque that topic",
            ("--model", "pumps", "--topic", topic, "--hook", "pager"): "unknown hook 'pager'",
        }
        for args, reason in cases.items():
            done = cli(pipeline, "create", "new-one", *args)
            assert done.returncode == 1 and reason in done.stderr, (args, done.stderr)
            assert done.stderr.count("\n") == 1, "one line, no traceback"
        duplicate = cli(pipeline, "create", "taken", "--model", "pumps", "--topic", topic)
        assert duplicate.returncode == 1 and "exists (Active)" in duplicate.stderr
        unknown = cli(pipeline, "pause", "ghost")
        assert unknown.returncode == 1 and "no inference named 'ghost'" in unknown.stderr


def test_update_model_and_a_failing_inference_system_paused_while_another_keeps_scoring(
        pipeline: Pipeline) -> None:
    client = ControlClient(pipeline.kafka, pipeline.settings)
    topic = pipeline.settings.topics.telemetry
    store = ModelStore(pipeline.settings.models_dir)
    v2 = fit_model(training_rows(4, 1500, seed=12),
                   ModelParams(model_id="pumps", signals=SIGNALS, window_size=8,
                               interval_ms=INTERVAL_MS, version=2))
    other = fit_model(training_rows(4, 1500, seed=13),
                      ModelParams(model_id="other", signals=tuple(reversed(SIGNALS)), window_size=8,
                                  interval_ms=INTERVAL_MS))
    store.save(other)
    with pipeline.worker() as w:
        w.wait_ready(60)
        for name, model in (("keeps", "pumps"), ("breaks", "other")):
            assert cli(pipeline, "create", name, "--model", model, "--topic", topic).returncode == 0
        assert cli(pipeline, "pause", "keeps").returncode == 0
        store.save(v2)
        done = cli(pipeline, "update-model", "keeps", "--model", "pumps")
        assert done.returncode == 0 and "model now pumps v2; restarted" in done.stdout
        keeps = state_of(client, "keeps")
        assert (keeps.status, keeps.epoch, keeps.config.model_version) == ("Active", 2, 2)
        # the other model's artifact is damaged while its inference is paused; restarting it
        # makes the worker fail to load it, which moves it to SystemPaused with the error
        assert cli(pipeline, "pause", "breaks").returncode == 0
        artifact = store.path("other", 1)
        artifact.write_bytes(artifact.read_bytes().replace(b'"version"', b'"versi0n"'))
        assert cli(pipeline, "restart", "breaks").returncode == 0
        broken = wait_for(lambda: (s := state_of(client, "breaks")).status == "SystemPaused" and s,
                          20, "the failing inference system-paused")
        assert broken.error is not None and "content hash mismatch" in broken.error
        shown = cli(pipeline, "show", "breaks").stdout
        assert "SystemPaused" in shown and "content hash mismatch" in shown
        start = now_ms()
        pipeline.send(readings_around(start, before=0, after=30))
        wait_for(lambda: w.status()["counts"].get("scored", 0) >= 10, 30,
                 "the healthy inference goes on scoring")
        assert [i["inference_id"] for i in w.status()["inferences"]] == ["keeps"]


def test_the_rest_api_schedules_shows_and_controls(pipeline: Pipeline, tmp_path: Path) -> None:
    token = "rest-api-token-0123456789"
    (tmp_path / "api-token").write_text(token)

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return rest_call(w.web_port, method, path, body, token)

    with pipeline.worker(extra_args=["--api-token-file", str(tmp_path / "api-token")]) as w:
        w.wait_ready(60)
        status, result = call("POST", "/assetwatch/inferences/",
                              {"name": "via-rest", "model_id": "pumps",
                               "topic": pipeline.settings.topics.telemetry})
        assert status == 200 and result["accepted"], result
        status, again = call("POST", "/assetwatch/inferences/",
                             {"name": "via-rest", "model_id": "pumps",
                              "topic": pipeline.settings.topics.telemetry})
        assert status == 409 and "exists" in again["reason"]
        shown = wait_for(lambda: (r := call("GET", "/assetwatch/inferences/via-rest/"))[0] == 200
                         and r[1], 10, "the worker's view of the new inference")
        assert shown["state"]["status"] == "Active"
        assert call("POST", "/assetwatch/inferences/via-rest/pause/")[0] == 200
        assert call("POST", "/assetwatch/inferences/via-rest/explode/")[0] == 404
        assert call("GET", "/assetwatch/inferences/nothing/")[0] == 404
        assert call("POST", "/assetwatch/inferences/", {"model_id": "pumps"})[0] == 400
        listed = wait_for(lambda: (r := call("GET", "/assetwatch/inferences/"))[1][0]["status"]
                          == "UserPaused" and r[1], 10, "the paused state in the list")
        assert [s["inference_id"] for s in listed] == ["via-rest"]


def test_inference_commands_need_a_deployment(pipeline: Pipeline) -> None:
    done = subprocess.run([sys.executable, "-m", "agents.cli", "inference", "list"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "pass --broker HOST:PORT or set ASSETWATCH_BROKER" in done.stderr
    assert "Traceback" not in done.stderr


def feed(t0_ms: int, first: int, count: int, spike_at: int | None = None) -> list[Reading]:
    """Readings ``first … first + count − 1`` of a historical feed of pump-1 from ``t0_ms``."""
    return [Reading("pump-1", t0_ms + (first + i) * INTERVAL_MS, r.signals)
            for i, r in enumerate(readings_around(0, 0, count, spike_at=spike_at))]


def test_an_event_clock_inference_goes_on_scoring_its_historical_feed_after_restart_and_update(
        pipeline: Pipeline) -> None:
    """Issue 17 (1): on the event clock a restart (or a model update) resumes in the feed's own
    time. The readings that came while it was paused are scored, as are later ones; none is
    left before a start set to the wall time."""
    client = ControlClient(pipeline.kafka, pipeline.settings)
    topic = pipeline.settings.topics.telemetry
    t0 = 1_704_067_200_000  # 2024-01-01: a historical feed, far behind the wall clock
    store = ModelStore(pipeline.settings.models_dir)
    store.save(fit_model(training_rows(4, 1500, seed=12),
                         ModelParams(model_id="pumps", signals=SIGNALS, window_size=8,
                                     interval_ms=INTERVAL_MS, version=2)))

    def progress(epoch: int) -> dict[str, Any]:
        shown = cli_json(pipeline, "show", "hist")
        assert shown["state"]["epoch"] == epoch, shown["state"]
        return dict(shown["progress"])

    def runs_epoch(epoch: int) -> None:
        wait_for(lambda: [i["epoch"] for i in w.status()["inferences"]] == [epoch], 20,
                 f"the worker runs epoch {epoch}")

    with pipeline.worker() as w:
        w.wait_ready(60)
        done = cli(pipeline, "create", "hist", "--model", "pumps", "--model-version", "1",
                   "--topic", topic, "--clock", "event", "--start", str(t0))
        assert done.returncode == 0, done.stderr
        runs_epoch(1)
        pipeline.send(feed(t0, 0, 300))
        wait_for(lambda: progress(1)["points_scored"] >= 290, 60, "the first 300 readings scored")

        assert cli(pipeline, "pause", "hist").returncode == 0
        wait_for(lambda: not w.status()["inferences"], 10, "the worker stops the paused inference")
        pipeline.send(feed(t0, 300, 100))  # the feed goes on while the inference is paused
        restarted = cli(pipeline, "restart", "hist")
        assert restarted.returncode == 0, restarted.stderr
        runs_epoch(2)
        pipeline.send(feed(t0, 400, 300, spike_at=150))
        after = wait_for(lambda: (p := progress(2))["points_scored"] >= 395 and p, 60,
                         "the paused period's and the later readings scored")
        assert after["warming_up"] == 0
        assert "nothing is skipped" in restarted.stdout
        state = state_of(client, "hist")
        assert state.active_from_ms == state.config.start_ms == t0, "the start stays in feed time"
        wait_for(lambda: f"hist/pump-1/{t0 + 550 * INTERVAL_MS}" in pipeline.anomaly_keys(), 30,
                 "the spike after the restart found")

        assert cli(pipeline, "pause", "hist").returncode == 0
        updated = cli(pipeline, "update-model", "hist", "--model", "pumps", "--model-version", "2")
        assert updated.returncode == 0 and "model now pumps v2" in updated.stdout, updated.stderr
        runs_epoch(3)
        pipeline.send(feed(t0, 700, 300))
        scored = wait_for(lambda: (p := progress(3))["points_scored"] >= 295 and p, 60,
                          "the readings after the model update scored")
        assert scored["warming_up"] == 0
    gaps = [e for e in client.events("hist") if e["kind"] == "gap" and e["reason"] == "paused"]
    assert gaps == [], "nothing was skipped in the feed's time, so no paused period is reported"
