"""Replay through the broker (SPEC §6, issue 14): a past range read from Kafka by time,
scored apart from the live stream, its results overwritten idempotently.

The first tests drive :func:`agents.replay_runner.run_replay` directly; the last sends the
``replay`` command to a running worker as a user does. The expected results come from the
pure core (:func:`streams.replay.score_range`) over the readings the test itself sent.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from agents.connection import KafkaConnection
from agents.control_client import ControlClient, latest_replays
from agents.kafka_io import make_producer
from agents.replay_desk import finalised_bound
from agents.replay_runner import run_replay
from streams.alerts import AlertConfig
from streams.codec import encode_anomaly
from streams.records import Anomaly, Reading
from streams.replay import ReplayState, replay_id_of, score_range
from streams.scoring import AssetScorer
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import (
    INTERVAL_MS,
    START_MS,
    Pipeline,
    end_offsets,
    wait_committed,
    wait_for,
)

pytestmark = pytest.mark.integration

POINTS = 2_000


def latest(p: Pipeline, records: int) -> dict[str, bytes | None]:
    """The anomalies topic's latest value per key (a key lives on one partition: in order),
    once ``records`` records are there (the embedded broker shows new records with a lag)."""
    topic = p.settings.topics.anomalies
    wait_for(lambda: len(p.read(topic)) >= records, 30, f"{records} records of {topic}")
    out: dict[str, bytes | None] = {}
    for key, value in p.read(topic):
        if key:
            out[key.decode()] = value
    return out


def fleet() -> list[Reading]:
    readings = generate_fleet(["pump-a", "pump-b"], POINTS + 100, START_MS, INTERVAL_MS, seed=5,
                              faults=[Fault("pump-a", "spike", 600, 1),
                                      Fault("pump-b", "spike", 1500, 1)]).readings
    # late points: every 50th reading arrives at the end, long after its slot was due
    late = readings[::50]
    return [r for r in readings if r not in late] + late


def stale(p: Pipeline, ts_ms: int, asset: str = "pump-a") -> Anomaly:
    return Anomaly(p.inference.inference_id, asset, ts_ms, p.model.model_id, p.model.version,
                   1.0, 0.99, p.inference.sensitivity, 0.5)


def test_a_replay_overwrites_its_range_with_a_from_scratch_scoring_idempotently(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet()
    p.send(readings)
    # a finalised range is history: every record of it is in the log before the replay
    end_offsets(kafka, p.inference.topic, p.settings.partitions, len(readings))
    start, end = START_MS + 50 * INTERVAL_MS, START_MS + (50 + POINTS) * INTERVAL_MS
    gone_in = stale(p, START_MS + 77 * INTERVAL_MS)       # in range, does not stand
    kept_out = stale(p, START_MS + 10 * INTERVAL_MS)      # before the range: untouched
    producer = make_producer(kafka)
    for a in (gone_in, kept_out):
        producer.produce(p.settings.topics.anomalies, key=a.key.encode(), value=encode_anomaly(a))
    assert producer.flush(10) == 0

    scorer = AssetScorer(p.inference, p.model, epoch=1)
    rid = replay_id_of(p.inference.inference_id, start, end)
    expected, done = score_range(scorer, readings, start, end, rid)
    assert expected and done == 2 * POINTS

    seen: list[str] = []
    accepted = ReplayState.accepted(rid, p.inference.inference_id, start, end, POINTS, 0)
    began = time.monotonic()
    outcome = run_replay(kafka, scorer, accepted, p.settings.topics.anomalies,
                         wall_ms=lambda: 1, report=lambda r: seen.append(r.status))
    took = time.monotonic() - began
    assert outcome.status == "Succeeded", outcome.reason
    assert seen == ["Running", "Running", "Succeeded"]
    print(f"replay of {POINTS} points x 2 assets: {took:.2f} s")  # docs/benchmarks.md

    gone = 1
    after = latest(p, 2 + len(expected) + gone)
    for a in expected:
        assert after[a.key] == encode_anomaly(a)
    assert after[gone_in.key] is None, "an anomaly that no longer stands is tombstoned"
    assert after[kept_out.key] == encode_anomaly(kept_out), "outside the range: untouched"
    in_range_standing = {k for k, v in after.items() if v is not None and k != kept_out.key}
    assert in_range_standing == {a.key for a in expected}

    again = run_replay(kafka, scorer, replace(accepted, updated_at_ms=2),
                       p.settings.topics.anomalies, wall_ms=lambda: 3)
    assert again.status == "Succeeded"
    # the same anomalies again, no tombstone: the stale one is gone already
    assert latest(p, 2 + 2 * len(expected) + gone) == after, "twice leaves it as once"


def test_a_replay_that_cannot_read_fails_with_its_reason_never_running(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    scorer = AssetScorer(replace(p.inference, topic=f"{unique}.missing"), p.model, epoch=1)
    r = ReplayState.accepted("r", "inf", START_MS, START_MS + 10_000, 10, 0)
    outcome = run_replay(kafka, scorer, r, p.settings.topics.anomalies, wall_ms=lambda: 1)
    assert outcome.status == "Failed" and outcome.reason


def test_the_replay_command_runs_on_a_worker_and_says_how_it_went(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet()
    client = ControlClient(kafka, p.settings)
    start, end = START_MS + 50 * INTERVAL_MS, START_MS + (50 + POINTS) * INTERVAL_MS
    inf = p.inference.inference_id
    with p.worker() as w:
        w.wait_ready(60)
        p.send(readings)
        # the workers report what they have finalised; a range within it can be replayed
        wait_for(lambda: (b := finalised_bound(client.stats(), inf, 1, INTERVAL_MS)) is not None
                 and b >= end, 60, "the range finalised")

        too_long = client.send(client.command("replay", inf, {"start_ms": start,
                                                             "end_ms": end + INTERVAL_MS}))
        assert not too_long["accepted"]
        assert "2001 data points; a replay covers at most 2000" in too_long["reason"]
        unfinalised = client.send(client.command("replay", inf, {
            "start_ms": start, "end_ms": START_MS + 10**6 * INTERVAL_MS}))
        assert "within what has been finalised" in unfinalised["reason"]

        # two replays at once: the second is refused while the first runs, naming it
        first = client.command("replay", inf, {"start_ms": start, "end_ms": end})
        second = client.command("replay", inf, {"start_ms": start, "end_ms": end - INTERVAL_MS})
        producer = make_producer(kafka)
        for cmd in (first, second):
            producer.produce(p.settings.topics.control, key=inf.encode(),
                             value=orjson.dumps(cmd.to_record()))
        assert producer.flush(10) == 0
        began = time.monotonic()
        answers = wait_for(lambda: (r := {e["command_id"]: e for e in client.events(inf)
                                          if e.get("kind") == "command_result"})
                           and first.command_id in r and second.command_id in r and r,
                           30, "both replay commands answered")
        rid = replay_id_of(inf, start, end)
        assert answers[first.command_id]["accepted"], answers[first.command_id]["reason"]
        assert not answers[second.command_id]["accepted"]
        assert f"{rid} (" in answers[second.command_id]["reason"]
        assert "one replay at a time" in answers[second.command_id]["reason"]

        outcome = client.wait_replay(inf, rid, timeout_s=60)
        took = time.monotonic() - began
        assert outcome["status"] == "Succeeded", outcome
        assert (outcome["done"], outcome["total"]) == (POINTS, POINTS)  # data points: range / Δ
        print(f"replay command of {POINTS} points x 2 assets, accepted → Succeeded: "
              f"{took:.2f} s")  # docs/benchmarks.md
        statuses = [r["status"] for r in client.events(inf)
                    if r.get("kind") == "replay" and r["replay_id"] == rid]
        assert statuses[0] == "Accepted" and statuses[-1] == "Succeeded"
        assert [r["status"] for r in latest_replays(client.events(inf))] == ["Succeeded"]

        # the live stream goes on scoring after (and during) the replay
        later = generate_fleet(["pump-a"], 40, START_MS + (POINTS + 100) * INTERVAL_MS,
                               INTERVAL_MS, seed=8, faults=[Fault("pump-a", "spike", 30, 1)])
        p.send(later.readings)
        spike = f"{inf}/pump-a/{START_MS + (POINTS + 130) * INTERVAL_MS}"
        wait_for(lambda: spike in p.anomaly_keys(), 30, "the live spike after the replay")

    scorer = AssetScorer(p.inference, p.model, epoch=1)
    expected, _ = score_range(scorer, readings, start, end, rid)
    after = {k.decode(): v for k, v in p.read(p.settings.topics.anomalies) if k}
    standing = {k for k, v in after.items() if v is not None and start <= int(k.rsplit("/", 1)[1]) < end}
    assert standing == {a.key for a in expected}
    for a in expected:
        assert after[a.key] == encode_anomaly(a)


def test_a_replay_left_running_by_a_stopped_worker_is_marked_failed_with_the_reason(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    client = ControlClient(kafka, p.settings)
    inf = p.inference.inference_id
    with p.worker() as w:
        w.wait_ready(60)
        changelog = f"{p.settings.app_id}-control-state-changelog"
        # the controller's table as a worker writes it (the inference synchronised from file)
        rows = wait_for(lambda: [(k, v) for k, v in p.read(changelog) if k and b"inference/" in k],
                        30, "the controller's table on its changelog")
    # what a worker killed mid-replay leaves behind: its replay Running in the table
    key = rows[0][0].replace(f"inference/{inf}".encode(), f"replay/{inf}".encode())
    left = ReplayState.accepted(replay_id_of(inf, 0, 2_000), inf, 0, 2_000, 2_000, 0).running(1)
    left = left.progressed(500, 2)
    producer = make_producer(kafka)
    producer.produce(changelog, key=key, value=orjson.dumps(left.to_record()), partition=0)
    assert producer.flush(10) == 0

    with p.worker("second.log") as w:
        w.wait_ready(60)
        failed = wait_for(lambda: [r for r in client.events(inf) if r.get("kind") == "replay"
                                   and r["replay_id"] == left.replay_id], 30,
                          "the abandoned replay marked Failed")
    assert failed[-1]["status"] == "Failed"
    assert failed[-1]["reason"].startswith("the worker stopped at 500/2000 points")
    assert [r["status"] for r in latest_replays(client.events(inf))] == ["Failed"]


def standing_in(p: Pipeline, start: int, end: int, asset: str) -> dict[str, bytes]:
    """The anomalies topic's standing anomalies of ``asset`` in ``[start, end)``."""
    latest_values: dict[str, bytes | None] = {}
    for key, value in p.read(p.settings.topics.anomalies):
        if key:
            latest_values[key.decode()] = value
    return {k: v for k, v in latest_values.items() if v is not None
            and k.startswith(f"{p.inference.inference_id}/{asset}/")
            and start <= int(k.rsplit("/", 1)[1]) < end}


def test_late_points_are_re_scored_automatically_as_a_manual_replay_of_the_range_would(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path, rescore_late=True,
                        alerts=(AlertConfig("any", correlation_points=1),))
    spike_at = 150
    readings = generate_fleet(["pump-a", "pump-b"], 300, START_MS, INTERVAL_MS, seed=11,
                              faults=[Fault("pump-a", "spike", spike_at, 1),
                                      Fault("pump-b", "spike", 100, 1)]).readings
    spike_ts = START_MS + spike_at * INTERVAL_MS
    inf = p.inference.inference_id
    spike_key = f"{inf}/pump-a/{spike_ts}"
    # the spike's reading (and one more of pump-a) reach Kafka after their slots were finalised
    late = [r for r in readings if r.asset_id == "pump-a"
            and r.ts_ms in (spike_ts, spike_ts + 40 * INTERVAL_MS)]
    assert len(late) == 2
    client = ControlClient(kafka, p.settings)
    window = (p.model.window_size + 1) * INTERVAL_MS
    with p.worker() as w:
        w.wait_ready(60)
        p.send([r for r in readings if r not in late])
        wait_for(lambda: (b := finalised_bound(client.stats(), inf, 1, INTERVAL_MS)) is not None
                 and b >= spike_ts + 40 * INTERVAL_MS + window, 60, "the late points' slots finalised")
        assert spike_key not in p.anomaly_keys(), "the live stream never saw the spike"
        p.send(late)

        def automatic() -> list[dict[str, object]]:
            done = [r for r in latest_replays(client.events(inf)) if r.get("origin") == "late"]
            return done if done and all(r["status"] in ("Succeeded", "Failed") for r in done) \
                and spike_key in standing_in(p, START_MS, START_MS + 300 * INTERVAL_MS, "pump-a") \
                else []

        auto = wait_for(automatic, 60, "the late points re-scored automatically")
        assert [r["status"] for r in auto] == ["Succeeded"], auto
        (replay,) = auto
        start, end = int(str(replay["start"])), int(str(replay["end"]))
        assert replay["assets"] == ["pump-a"]
        # both late points' ranges, coalesced into one replay
        assert start == spike_ts and end == spike_ts + 40 * INTERVAL_MS + window
        after_auto = standing_in(p, start, end, "pump-a")
        assert spike_key in after_auto

        manual = client.send(client.command("replay", inf, {"start_ms": start, "end_ms": end,
                                                            "assets": ["pump-a"]}))
        assert manual["accepted"], manual["reason"]
        outcome = client.wait_replay(inf, str(replay["replay_id"]), timeout_s=60,
                                     since_ms=int(manual["at"]))
        assert outcome["status"] == "Succeeded" and outcome.get("origin") == "command"
        assert standing_in(p, start, end, "pump-a") == after_auto, "automatic = manual replay"

    # and both are what a from-scratch scoring of every reading finds there
    scorer = AssetScorer(p.inference, p.model, epoch=1)
    expected, _ = score_range(scorer, readings, start, end, str(replay["replay_id"]),
                              frozenset({"pump-a"}))
    assert set(after_auto) == {a.key for a in expected}
    for a in expected:
        assert after_auto[a.key] == encode_anomaly(a)
    alerted = [orjson.loads(v) for _, v in wait_for(lambda: p.read(p.settings.topics.alerts), 30,
                                                    "the live stream's alerts") if v]
    assert not [a for a in alerted if a["first_ts"] <= spike_ts <= a["last_ts"]], \
        "a re-score raises no alert"


def test_a_late_points_re_score_request_survives_a_kill_just_after_its_input_is_committed(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    """The request goes with the output of the batch that found the point late, acknowledged
    before its input is committed: a worker killed as soon as the group has committed the
    late record has sent it (a worker that collected late points for a second first lost it)."""
    p = Pipeline.create(kafka, unique, tmp_path, rescore_late=True)
    spike_at = 120
    readings = generate_fleet(["pump-a"], 200, START_MS, INTERVAL_MS, seed=11,
                              faults=[Fault("pump-a", "spike", spike_at, 1)]).readings
    spike_ts = START_MS + spike_at * INTERVAL_MS
    spike_key = f"{p.inference.inference_id}/pump-a/{spike_ts}"
    late = [r for r in readings if r.ts_ms == spike_ts]
    client = ControlClient(kafka, p.settings)
    inf = p.inference.inference_id
    with p.worker("first.log") as w:
        w.wait_ready(60)
        p.send([r for r in readings if r not in late])
        wait_for(lambda: (b := finalised_bound(client.stats(), inf, 1, INTERVAL_MS)) is not None
                 and b >= spike_ts + (p.model.window_size + 1) * INTERVAL_MS, 60,
                 "the late point's slots finalised")
        p.send(late)
        ends = end_offsets(p.kafka, p.settings.topics.telemetry, p.settings.partitions,
                           len(readings))
        wait_committed(p, ends, 30, "the late record committed")
        w.kill()
    assert spike_key not in p.anomaly_keys(), "the live stream never scored the spike"
    with p.worker("second.log") as second:
        second.wait_ready(60)

        def re_scored() -> bool:
            done = [r for r in latest_replays(client.events(inf)) if r.get("origin") == "late"]
            return bool(done) and all(r["status"] == "Succeeded" for r in done) and \
                spike_key in p.anomaly_keys()

        wait_for(re_scored, 90, "the late point re-scored after the kill")
        status = second.status()
    assert status is not None and status["counts"].get("received", 0) == 0, "nothing read again"
