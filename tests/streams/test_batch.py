"""Batch detection scores as the stream does: same anomalies, same scores, same counts."""

from __future__ import annotations

import io
import random

import pytest

import schemas
from streams.batch import BatchScorer, Detection
from streams.batch_input import RequestError, csv_chunks, json_chunks, parse_detect_request
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, generate_fleet
from tests.detections import assert_same_detections

T0 = 1_767_225_600_000
S = 1_000


def series(points: int = 400, seed: int = 5) -> list[Reading]:
    """One pump with a spike, a drift and a stuck sensor."""
    faults = [Fault("p", "spike", 120, 4), Fault("p", "drift", 220, 40), Fault("p", "stuck", 320, 30)]
    faults = [f for f in faults if f.start + f.length <= points]
    return generate_fleet(["p"], points, T0, S, seed=seed, faults=faults).readings


def streamed(model: Model, readings: list[Reading], per_message: int = 1,
             sensitivity: int = 70) -> list[tuple[int, float, float, dict[str, float], bool]]:
    """The anomalies the streaming engine publishes for the readings (event time, one asset)."""
    cfg = InferenceConfig("inf", model.model_id, "tele", sensitivity=sensitivity, clock="event",
                          idle_timeout_ms=1_000)
    engine = Engine([AssetScorer(cfg, model)], load=lambda k: None, partitions=1)
    found = []
    for i in range(0, len(readings), per_message):
        out = engine.process_batch([Message("tele", 0, i, b"p",
                                            encode_telemetry(readings[i:i + per_message]))], now_ms=0)
        found += [a for _, a in out.anomalies]
    found += [a for _, a in engine.tick(now_ms=10**13).anomalies]
    return [(a.ts_ms, a.score, a.severity, dict(a.contributions), a.filled) for a in found]


def batched(model: Model, readings: list[Reading], chunk: int,
            sensitivity: int = 70) -> tuple[list[tuple[int, float, float, dict[str, float], bool]],
                                            BatchScorer]:
    batch = BatchScorer(model, sensitivity)
    found: list[Detection] = []
    for i in range(0, len(readings), chunk):
        found += batch.feed(readings[i:i + chunk])
    found += batch.finish()
    return [(d.ts_ms, d.score, d.severity, dict(d.contributions), d.filled) for d in found], batch


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_batch_result_is_the_stream_result(model: Model, chunk: int) -> None:
    readings = series()
    expected = streamed(model, readings)
    got, batch = batched(model, readings, chunk)
    assert len(expected) >= 10  # the faults are found: the comparison is not of two empty lists
    assert_same_detections(got, expected)  # to rounding: numpy scores a chunk at once
    assert batch.counts.scored + batch.counts.warming_up == len(readings)


def test_missing_points_are_filled_and_gaps_skipped_as_in_the_stream(model: Model) -> None:
    readings = series()
    # two missing points (filled: within the fill limit), then 20 missing (a gap)
    holed = [r for i, r in enumerate(readings) if i not in (50, 51) and not 150 <= i < 170]
    got, batch = batched(model, holed, chunk=64)
    assert_same_detections(got, streamed(model, holed))
    assert batch.counts.filled == 2
    assert batch.counts.gap_points == 20


def test_order_within_a_chunk_does_not_matter(model: Model) -> None:
    readings = series()
    shuffled = readings[:]
    random.Random(3).shuffle(shuffled)
    assert batched(model, shuffled, chunk=len(shuffled))[0] == batched(model, readings, chunk=50)[0]


def test_a_point_before_what_an_earlier_chunk_finalised_is_late(model: Model) -> None:
    readings = series(60)
    batch = BatchScorer(model)
    batch.feed(readings[30:])
    batch.feed(readings[:30])
    batch.finish()
    assert batch.counts.late == 30
    assert batch.counts.scored + batch.counts.warming_up == 30


def test_a_higher_sensitivity_finds_a_superset(model: Model) -> None:
    readings = series()
    low = {d[0] for d in batched(model, readings, 100, sensitivity=60)[0]}
    high = {d[0] for d in batched(model, readings, 100, sensitivity=80)[0]}
    assert low < high


def test_a_detection_names_its_signals_with_actual_and_expected_values(model: Model) -> None:
    readings = series()
    batch = BatchScorer(model)
    found = batch.feed(readings) + batch.finish()
    spike = next(d for d in found if d.ts_ms == T0 + 120 * S)
    assert spike.signals[0] == "vib"  # the spike is on vib
    assert spike.actual == pytest.approx(dict(readings[120].signals))
    assert spike.expected is not None and set(spike.expected) == set(SIGNALS)
    assert spike.actual["vib"] - spike.expected["vib"] > 4  # the spike adds 6
    plain = spike.to_plain()
    assert plain["timestamp_iso"] == "2026-01-01T00:02:00.000Z"
    schemas.validator("detect-result.v1", "anomaly")(plain)


def test_csv_and_json_inputs_give_the_same_readings() -> None:
    rows = series(30)
    csv_text = "timestamp,temp,current,vib,pressure,note\n" + "".join(
        f"{r.ts_ms},{r.signals['temp']},{r.signals['current']},{r.signals['vib']},"
        f"{r.signals['pressure']},x\n" for r in rows)
    from_csv = [r for c in csv_chunks(io.StringIO(csv_text), SIGNALS, "p", chunk_rows=7)
                for r in c.readings]
    items = [{"timestamp": r.ts_ms, "values": [r.signals[s] for s in SIGNALS]} for r in rows]
    from_json = [r for c in json_chunks(list(SIGNALS), items, SIGNALS, "p", chunk_rows=7)
                 for r in c.readings]
    assert from_csv == from_json == rows


def test_bad_rows_are_counted_by_kind_and_the_rest_read() -> None:
    text = ("ts;temp\n0;1\nlater;2\n2000;warm\n3000;3;extra\n4000;\n5000;nan\n6000;4\n")
    chunks = list(csv_chunks(io.StringIO(text), ("temp",), "s", chunk_rows=3))
    errors = [(e.row, e.kind) for c in chunks for e in c.errors]
    assert errors == [(2, "timestamp"), (3, "value"), (4, "fields")]
    readings = [(r.ts_ms, dict(r.signals)) for c in chunks for r in c.readings]
    assert readings == [(0, {"temp": 1.0}), (4000, {}), (5000, {}), (6000, {"temp": 4.0})]
    assert [len(c.readings) + len(c.errors) for c in chunks] == [3, 3, 1]


def test_an_input_without_a_model_signal_is_refused_whole() -> None:
    with pytest.raises(ValueError, match=r"lacks the model's signal\(s\) vib \(it has: temp\)"):
        list(csv_chunks(io.StringIO("ts,temp\n0,1\n"), ("temp", "vib"), "s"))


CHECK = schemas.validator("detect-request.v1")


def request(rows: int, signals: int) -> dict[str, object]:
    names = [f"s{j}" for j in range(signals)]
    return {"model": "m", "signalNames": names,
            "data": [{"timestamp": i * S, "values": [0.0] * signals} for i in range(rows)]}


@pytest.mark.parametrize(("rows", "signals"), [(30_000, 1), (7_500, 4)])
def test_the_synchronous_limit_admits_30000_points(rows: int, signals: int) -> None:
    assert parse_detect_request(request(rows, signals), CHECK).points == 30_000


@pytest.mark.parametrize(("rows", "signals"), [(30_001, 1), (10_001, 3)])
def test_the_synchronous_limit_refuses_30001_points_with_413(rows: int, signals: int) -> None:
    with pytest.raises(RequestError) as err:
        parse_detect_request(request(rows, signals), CHECK)
    assert err.value.status == 413
    assert "limit of 30,000" in err.value.message and "job" in err.value.message


@pytest.mark.parametrize(("change", "field"), [
    ({"model": 5}, "model must be string"),
    ({"signalNames": []}, "signalNames must contain at least 1 items"),
    ({"data": [{"timestamp": 0}]}, "data[0] must contain ['values'] properties"),
    ({"data": [{"timestamp": 0, "values": ["hot"]}]}, "data[0].values[0] must be number or null"),
    ({"sensitivity": 0}, "sensitivity must be bigger than or equal to 1"),
    ({"colour": "red"}, "request must not contain {'colour'} properties"),
])
def test_a_malformed_request_is_400_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_detect_request({**request(2, 1), **change}, CHECK)
    assert err.value.status == 400
    assert err.value.message == field


def test_a_bad_timestamp_or_a_missing_signal_is_400_naming_it() -> None:
    doc = request(3, 1)
    doc["data"][1]["timestamp"] = "noon"  # type: ignore[index]
    req = parse_detect_request(doc, CHECK)
    with pytest.raises(RequestError, match=r"^data\[1\]\.timestamp: timestamp 'noon'"):
        req.readings(("s0",))
    with pytest.raises(RequestError, match=r"^signalNames: .*lacks the model's signal\(s\) vib"):
        req.readings(("s0", "vib"))


def test_the_fast_csv_path_reads_what_the_careful_one_reads() -> None:
    from streams.batch_input import _csv_chunk, _csv_rows

    lines = [f"{T0 + 1000 * i},{i * 0.5},nan,{-i},x{i}\n" for i in range(50)] + ["1.7e12,1,2,inf,y\n"]
    wanted = [("a", 1), ("b", 2), ("c", 3)]
    fast = _csv_chunk(lines, 1, ",", 5, 0, wanted, "s")
    careful = _csv_rows(lines, 1, ",", 5, 0, wanted, "s")
    assert fast == careful
    assert fast.readings[-1] == Reading("s", 1_700_000_000_000, {"a": 1.0, "b": 2.0})
