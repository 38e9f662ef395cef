"""The streaming path end to end through a real broker: telemetry in, anomalies and dead letters out."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from pathlib import Path

import orjson
import pytest

from agents.connection import KafkaConnection
from streams.simulate import Fault, generate_fleet
from tests.integration.harness import (
    INTERVAL_MS,
    START_MS,
    Pipeline,
    finalised,
    received,
    wait_for,
)

pytestmark = pytest.mark.integration

ASSETS = ["pump-a", "pump-b", "pump-c"]
FAULTS = [Fault("pump-b", "spike", 60, 2), Fault("pump-c", "stuck", 80, 40)]


def at_least(items: list, n: int) -> list | None:  # type: ignore[type-arg]
    return items if len(items) >= n else None


def fleet(points: int = 160):  # type: ignore[no-untyped-def]
    return generate_fleet(ASSETS, points, START_MS, INTERVAL_MS, seed=5, faults=FAULTS)


def test_clean_run_publishes_exactly_the_expected_anomaly_keys(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    expected = p.expected_keys(readings)
    assert f"inf/pump-b/{START_MS + 60 * INTERVAL_MS}" in expected  # the spike is an anomaly
    assert sorted(p.scored_keys(readings, expected)) == sorted(expected)


def test_batched_and_single_messages_score_identically(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    expected = p.expected_keys(readings, per_message=1)
    assert p.expected_keys(readings, per_message=25) == expected
    assert sorted(p.scored_keys(readings, expected, per_message=25)) == sorted(expected)


def test_gateway_batches_of_many_assets_are_scored_at_each_assets_home(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings  # interleaved: one reading of each asset per instant
    expected = p.expected_keys(readings)
    with p.worker() as w:
        w.wait_ready(60)
        p.send_from_gateway(readings, per_message=30, key=b"gateway-7")
        wait_for(received(w, len(readings)), 60, "all readings received")
        keys = p.wait_for_anomalies(expected, 30)
        status = w.status()
    assert sorted(keys) == sorted(expected)
    # the gateway's key puts every message on one partition: the other assets were forwarded
    assert status is not None and status["counts"]["forwarded"] > 0


BAD_INPUTS = [
    (b"pump-a", b"{not json", "not JSON"),
    (b"pump-a", b'{"asset_id": "pump-a", "ts": 1767225600000}', "schema"),
    (b"pump-a", b'{"asset_id": "pump-a", "ts": "yesterday", "signals": {"temp": 1}}', "timestamp"),
    (b"pump-a", b'{"asset_id": "pump-a", "ts": 12, "signals": {"temp": 1}}', "timestamp"),
    (b"pump-a", b'{"asset_id": "pump-a", "ts": 1767225600000, "signals": {"temp": 1e999}}', ""),
    (None, b"x" * 1_200_000, "oversize"),
]


def test_malformed_input_goes_to_the_dead_letter_topic_while_scoring_continues(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    half = len(readings) // 2
    expected = p.expected_keys(readings)
    with p.worker() as w:
        w.wait_ready(60)
        p.send(readings[:half])
        p.send_raw([(k, v) for k, v, _ in BAD_INPUTS])
        p.send(readings[half:])
        wait_for(received(w, len(readings) + len(BAD_INPUTS)), 60, "all messages received")
        dead = wait_for(lambda: at_least(p.read(p.settings.topics.dead_letter), len(BAD_INPUTS)),
                        30, "the dead letters")
        keys = p.wait_for_anomalies(expected, 30)
        status = w.status()
    assert sorted(keys) == sorted(expected)
    assert status is not None and status["counts"]["invalid"] == len(BAD_INPUTS)
    records = [orjson.loads(v) for _, v in dead if v]
    assert len(records) == len(BAD_INPUTS)
    # an original is kept whole, or (oversize) as a prefix with the hash of the whole
    by_hash = {r.get("raw_sha256") or hashlib.sha256(base64.b64decode(r["raw_b64"])).hexdigest(): r
               for r in records}
    for _key, raw, reason in BAD_INPUTS:
        record = by_hash.get(hashlib.sha256(raw).hexdigest())
        assert record is not None, f"{raw[:40]!r} is not on the dead-letter topic"
        assert record["reason"].startswith(reason), record["reason"]
        assert record["source_topic"] == p.settings.topics.telemetry
        assert record["raw_size"] == len(raw)
        assert raw.startswith(base64.b64decode(record["raw_b64"]))
        assert record["raw_truncated"] == (len(raw) > 1_048_576)


def test_restarted_worker_keeps_its_windows_and_publishes_no_duplicate_keys(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    # restart just before the spike: only kept windows let the worker score it at once
    cut = next(i for i, r in enumerate(readings) if r.ts_ms == START_MS + 58 * INTERVAL_MS)
    expected = p.expected_keys(readings)
    with p.worker("first.log") as first:
        first.wait_ready(60)
        p.send(readings[:cut])
        wait_for(received(first, cut), 60, "the first half received")
        # the pending last point of each pump is finalised once it has been idle for a second
        wait_for(finalised(first, cut), 60, "the first half finalised")
        before = first.status()
    assert first.proc is not None and first.proc.returncode == 0
    with p.worker("second.log") as second:
        second.wait_ready(60)
        p.send(readings[cut:])
        wait_for(received(second, len(readings) - cut), 60, "the second half received")
        keys = p.wait_for_anomalies(expected, 30)
        after = second.status()
    duplicates = [k for k, n in Counter(keys).items() if n > 1]
    assert duplicates == []
    assert set(keys) == expected
    assert before is not None and after is not None
    # every asset warmed up once, in the first run; none had to warm up again
    assert before["counts"]["warming_up"] == len(ASSETS) * p.model.window_size
    assert after["counts"].get("warming_up", 0) == 0


def test_missing_data_beyond_the_fill_limit_is_put_on_the_events_topic_as_a_gap(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    hole = range(START_MS + 100 * INTERVAL_MS, START_MS + 120 * INTERVAL_MS)  # 20 > 5 fillable
    readings = [r for r in fleet().readings if not (r.asset_id == "pump-a" and r.ts_ms in hole)]
    with p.worker() as w:
        w.wait_ready(60)
        p.send(readings)
        events = wait_for(lambda: [e for _, v in p.read(p.settings.topics.inference_events)
                                   if v and (e := orjson.loads(v))["kind"] == "gap"],
                          60, "a gap event")
    assert [(e["inference_id"], e["asset_id"], e["reason"]) for e in events] == [
        ("inf", "pump-a", "missing data")]
    assert (events[0]["from"], events[0]["to"], events[0]["points"]) == (
        hole.start, hole.stop, 20)


def test_a_lasting_level_adopted_by_the_model_is_put_on_the_events_topic(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    from streams.decision import FlagPolicy
    from streams.records import Reading
    from tests.integration.harness import small_model

    model = replace(small_model(), flags=FlagPolicy(adopt_points=30))
    p = Pipeline.create(kafka, unique, tmp_path, model=model)
    shift = START_MS + 60 * INTERVAL_MS  # pump-a runs at a new level from here on
    readings = [r if r.asset_id != "pump-a" or r.ts_ms < shift else
                Reading(r.asset_id, r.ts_ms, {s: v + 40.0 for s, v in r.signals.items()})
                for r in generate_fleet(ASSETS, 200, START_MS, INTERVAL_MS, seed=5).readings]
    with p.worker() as w:
        w.wait_ready(60)
        p.send(readings)
        events = wait_for(lambda: [e for _, v in p.read(p.settings.topics.inference_events)
                                   if v and (e := orjson.loads(v))["kind"] == "regime_adopted"],
                          60, "a regime_adopted event")
    [event] = events
    assert (event["inference_id"], event["asset_id"]) == ("inf", "pump-a")
    assert event["ts"] > shift and set(event["expected_after"]) == set(model.signals)
    assert all(event["expected_after"][s] > event["expected_before"][s] + 20 for s in model.signals)
