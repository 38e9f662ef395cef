"""A crashed worker (kill -9) and alerts through the broker (SPEC §5.3, §7)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from agents.connection import KafkaConnection
from streams.alerts import AlertConfig
from streams.codec import loads
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import (
    INTERVAL_MS,
    START_MS,
    Pipeline,
    commit_offsets,
    end_offsets,
    finalised,
    received,
    wait_committed,
    wait_for,
)
from tests.integration.test_metrics_endpoint import scrape
from tests.integration.test_pipeline import ASSETS, fleet

pytestmark = pytest.mark.integration


def test_a_worker_killed_mid_stream_recovers_and_skips_no_point(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    expected = p.expected_keys(readings)
    cut = len(readings) * 2 // 3
    with p.worker("first.log") as first:
        first.wait_ready(60)
        p.send(readings[:cut])
        wait_for(received(first, cut // 2), 60, "part of the first two thirds taken")
        first.kill()  # SIGKILL mid-stream: nothing flushed, nothing committed on purpose
    with p.worker("second.log") as second:
        second.wait_ready(60)
        p.send(readings[cut:])
        keys = p.wait_for_anomalies(expected, 60)
        wait_for(lambda: set(p.anomaly_keys()) >= expected, 30, "every expected anomaly")
        status = second.status()
    values: dict[str, set[bytes]] = defaultdict(set)
    for k, v in p.read(p.settings.topics.anomalies):
        assert k is not None and v is not None
        values[k.decode()].add(v)
    assert set(keys) == expected, "no point received before the crash was skipped"
    # a key published twice (the crash window, docs/state-and-recovery.md) carries the same record
    assert all(len(v) == 1 for v in values.values())
    assert status is not None and status["counts"]["received"] >= len(readings) - cut


def test_a_commit_past_the_stored_state_skips_no_point(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    """The group's committed offset says points are done that no stored state took: the next
    worker reads them from the broker before its live stream (streams/checkpoint.py)."""
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    expected = p.expected_keys(readings)
    head = [r for r in readings if r.ts_ms < START_MS + 40 * INTERVAL_MS]
    middle = [r for r in readings if START_MS + 40 * INTERVAL_MS <= r.ts_ms < START_MS + 100 * INTERVAL_MS]
    tail = readings[len(head) + len(middle):]
    assert any(k.endswith(f"/{START_MS + 60 * INTERVAL_MS}") for k in expected), \
        "a fault lies in the points the commit skips"
    with p.worker("first.log") as first:
        first.wait_ready(60)
        p.send(head)
        # finalised: the epoch's pre-fill is over, so the next worker does not read history
        wait_for(finalised(first, len(head)), 60, "the head scored")
    p.send(middle)  # no worker runs; then the group's offset is moved past them
    telemetry = p.settings.topics.telemetry
    commit_offsets(p.kafka, p.settings.app_id, telemetry,
                   end_offsets(p.kafka, telemetry, p.settings.partitions, len(head) + len(middle)))
    with p.worker("second.log") as second:
        second.wait_ready(60)
        p.send(tail)
        keys = p.wait_for_anomalies(expected, 60)
        status = second.status()
        metrics = scrape(second.web_port)
    assert sorted(set(keys)) == sorted(expected)
    assert metrics[("assetwatch_hole_records_total", (("topic", p.settings.topics.telemetry),))] \
        == len(middle)
    assert status is not None
    assert status["counts"]["hole_records"] == len(middle), "exactly the skipped records were read"
    assert status["counts"]["received"] == len(middle) + len(tail)


def test_a_crash_after_the_last_commit_leaves_no_silent_assets_slots_unfinalised(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    """The feed stops (the assets fall silent) and the worker is killed once its group has
    committed every record but before the idle rule finalised the last slots: no record is
    read again, so only adopting the stored states (Engine.adopt) lets the next worker
    finalise them — here a spike on each asset's last point."""
    idle_ms = 20_000
    p = Pipeline.create(kafka, unique, tmp_path, idle_timeout_ms=idle_ms)
    points = 60
    last_ts = START_MS + (points - 1) * INTERVAL_MS
    readings = generate_fleet(ASSETS, points, START_MS, INTERVAL_MS, seed=5,
                              faults=[Fault(a, "spike", points - 1, 1) for a in ASSETS]).readings
    expected = p.expected_keys(readings)
    last = {f"inf/{a}/{last_ts}" for a in ASSETS}
    assert last <= expected, "the last points are anomalies once finalised"
    with p.worker("first.log") as first:
        first.wait_ready(60)
        p.send(readings)
        ends = end_offsets(p.kafka, p.settings.topics.telemetry, p.settings.partitions,
                           len(readings))
        wait_committed(p, ends, idle_ms / 2000, "all committed")
        assert not last & set(p.anomaly_keys()), "killed before the idle rule ran"
        first.kill()
    with p.worker("second.log") as second:
        second.wait_ready(60)
        keys = p.wait_for_anomalies(expected, idle_ms / 1000 + 30)
        status = second.status()
    assert set(keys) == expected
    assert status is not None and status["counts"].get("received", 0) == 0, "nothing read again"
    assert status["counts"]["states_adopted"] == len(ASSETS)


@pytest.mark.parametrize(("mode", "notifying"), [("group", ["open", "resolved"]),
                                                  ("each", ["single"])])
def test_alerts_are_published_beside_the_anomalies(
        kafka: KafkaConnection, unique: str, tmp_path: Path, mode: str, notifying: list[str]) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    alert = AlertConfig("high", correlation_points=3, mode=mode)  # type: ignore[arg-type]
    p.inference = replace(p.inference, alerts=(alert,))
    (tmp_path / "inferences.json").write_bytes(orjson.dumps([p.inference.to_dict()]))
    readings = fleet().readings
    expected = p.expected_keys(readings)
    assert expected, "the fleet has faults to alert on"
    p.scored_keys(readings, expected)
    records = wait_for(lambda: p.read(p.settings.topics.alerts), 30, "alert records")
    alerts = [loads(v) for _, v in records if v is not None]
    assert {a["inference_id"] for a in alerts} == {"inf"}
    states = [a["state"] for a in alerts]
    assert set(notifying) <= set(states)
    counted = sum(a["anomaly_count"] for a in alerts if a["state"] in ("resolved", "single"))
    open_groups = {a["alert_id"] for a in alerts} - {a["alert_id"] for a in alerts
                                                     if a["state"] in ("resolved", "single")}
    if mode == "each":
        assert counted == len(expected) and not open_groups
    else:
        assert counted + sum(1 for _ in open_groups) <= len(expected) and counted >= 1


def test_inference_scope_alerts_group_the_anomalies_of_all_assets(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    plant = AlertConfig("plant", correlation_points=30, scope="inference")
    p.inference = replace(p.inference, alerts=(plant,))
    (tmp_path / "inferences.json").write_bytes(orjson.dumps([p.inference.to_dict()]))
    readings = fleet().readings
    expected = p.expected_alerts(readings)
    groups = {a.alert_id: a for a in expected if a.state == "resolved"}
    assert any(len(a.assets) > 1 for a in groups.values()), "the faults of two pumps correlate"
    head = [r for r in readings if r.ts_ms < readings[0].ts_ms + 20 * 1_000]  # no fault yet
    with p.worker() as w:  # the correlation agent runs on the worker: keep it up until done
        w.wait_ready(60)
        # every pump's partition has progress before the faults: a partition whose first asset
        # comes after the others moved on bounds nothing (docs/alerts.md)
        p.send(head)
        wait_for(received(w, len(head)), 60, "the first readings of every pump")
        p.send(readings[len(head):])
        resolved = wait_for(lambda: (r := [a for _, v in p.read(p.settings.topics.alerts)
                                          if v and (a := loads(v))["state"] == "resolved"])
                            and len(r) >= len(groups) and r, 60, f"{len(groups)} resolved alerts")
    assert {(a["alert_id"], a["anomaly_count"], tuple(a["assets"])) for a in resolved} == {
        (a.alert_id, a.anomaly_count, a.assets) for a in groups.values()}
    opened = [loads(v) for _, v in p.read(p.settings.topics.alerts) if v and loads(v)["state"] == "open"]
    assert sorted(a["alert_id"] for a in opened) == sorted(groups)
