"""Lateness by arrival at Kafka (SPEC §5.2): a ``wall`` inference's point is late only if its
record reached the broker after its slot was due — not because the worker read it late."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from agents.connection import KafkaConnection
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import INTERVAL_MS, START_MS, Pipeline, received, wait_for

pytestmark = pytest.mark.integration

DELAY_MS = 2_000
ASSETS = ["pump-a", "pump-b"] + [f"pump-{i}" for i in range(30)]


def due_ms(ts_ms: int) -> int:
    return ts_ms // INTERVAL_MS * INTERVAL_MS + INTERVAL_MS + DELAY_MS


def on_time_keys(p: Pipeline, readings: list[Reading]) -> set[str]:
    """The anomalies of a worker that read every point the moment it arrived (pure engine)."""
    engine = Engine([AssetScorer(p.inference, p.model)], load=lambda k: None, partitions=1)
    first_due = min(due_ms(r.ts_ms) for r in readings)
    out = engine.process_batch([Message(p.inference.topic, 0, i, r.asset_id.encode(),
                                        encode_telemetry([r]))
                                for i, r in enumerate(readings)], now_ms=first_due - 1)
    assert out.counts["late"] == 0
    return {a.key for _, a in out.anomalies + engine.tick(now_ms=10**13).anomalies}


def test_a_stopped_worker_scores_on_restart_every_point_that_reached_kafka_on_time(
    kafka: KafkaConnection, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small batches: the backlog is read in several, as a large one would be
    monkeypatch.setenv("ASSETWATCH_BATCH_MAX_EVENTS", "10")
    p = Pipeline.create(kafka, unique, tmp_path)
    p.inference = replace(p.inference, clock="wall", delay_ms=DELAY_MS)
    declared = {k: v for k, v in p.inference.to_dict().items() if k != "start_ms"}  # from now
    (tmp_path / "inferences.json").write_bytes(orjson.dumps([declared]))
    with p.worker("first.log") as first:
        first.wait_ready(60)
        # stamped from now on, sent at once: every record reaches Kafka before its slot is due
        t0 = time.time_ns() // 1_000_000 // INTERVAL_MS * INTERVAL_MS
        fleet = generate_fleet(ASSETS, 24, t0, INTERVAL_MS, seed=4,
                               faults=[Fault("pump-b", "spike", 18, 1)]).readings
        head = [r for r in fleet if r.ts_ms < t0 + 12 * INTERVAL_MS]
        tail = fleet[len(head):]
        p.send(head)
        wait_for(received(first, len(head)), 30, "the first half read")
    sent_at = time.time_ns() // 1_000_000
    assert sent_at < min(due_ms(r.ts_ms) for r in tail), "the worker took too long to stop"
    p.send(tail)  # no worker reads these until long after their slots were due
    last_due = max(due_ms(r.ts_ms) for r in fleet)
    wait_for(lambda: time.time_ns() // 1_000_000 > last_due + 1_000, 30,
             "every slot due while no worker runs")
    expected = on_time_keys(p, fleet)
    assert f"inf/pump-b/{t0 + 18 * INTERVAL_MS}" in expected, "the spike is in the second half"
    with p.worker("second.log") as second:
        second.wait_ready(60)
        wait_for(received(second, len(tail)), 90, "the second half read")
        status = wait_for(lambda: (st := second.status()) and
                          st["counts"].get("scored", 0) + st["counts"].get("warming_up", 0)
                          >= len(tail) and st, 60, "the second half finalised")
        assert status["counts"].get("late", 0) == 0, status["counts"]
        keys = p.wait_for_anomalies(expected, 30)
        assert set(keys) == expected
        # a point sent now for a slot long due did reach Kafka late
        old = fleet[5]
        p.send([Reading(old.asset_id, old.ts_ms + 1, old.signals)])
        wait_for(lambda: (st := second.status()) and st["counts"].get("late", 0) == 1, 30,
                 "the late point counted")
        late = wait_for(lambda: p.read(p.settings.topics.late), 30, "the late record")
    assert [k for k, _ in late] == [f"inf/{old.asset_id}/{old.ts_ms + 1}".encode()]


def test_a_reading_stamped_far_after_it_reached_kafka_is_dead_lettered_and_harms_nothing(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    """One reading at 2099 on an event-clock asset: refused with its reason; the asset's clock
    stays where its feed is, and the points after it are scored, not late."""
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = generate_fleet(["pump-a"], 60, START_MS, INTERVAL_MS, seed=3).readings
    future = Reading("pump-a", 4_070_908_800_000, readings[29].signals)  # 2099-01-01
    with p.worker() as w:
        w.wait_ready(60)
        p.send(readings[:30])
        p.send([future])
        p.send(readings[30:])
        wait_for(received(w, len(readings) + 1), 60, "every message received")
        status = wait_for(lambda: (st := w.status()) and
                          st["counts"].get("scored", 0) + st["counts"].get("warming_up", 0)
                          == len(readings) and st, 30, "every good point finalised")
        dead = wait_for(lambda: p.read(p.settings.topics.dead_letter), 30, "the dead letter")
        progress = w.status()
    assert status["counts"].get("late", 0) == 0 and status["counts"]["invalid"] == 1
    (record,) = [orjson.loads(v) for _, v in dead if v]
    assert record["reason"].startswith("timestamp ahead of arrival: 2099-01-01"), record["reason"]
    assert progress is not None and "gap" not in progress["counts"]
