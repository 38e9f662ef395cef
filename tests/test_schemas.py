"""The schemas are valid, their examples pass, and what the codec emits matches them."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from streams.codec import encode_anomaly, encode_dead_letter, encode_late, loads
from streams.decode import decode_telemetry
from streams.records import Anomaly, Reading, Rejection

NAMES = ["alert.v1", "anomaly.v1", "control-command.v1", "dead-letter.v1",
         "detect-request.v1", "detect-result.v1",  # batch detection (issue 15)
         "hook-dead-letter.v1",  # hooks (issue #5)
         "job-cancel.v1", "job-request.v1", "job-status.v1",  # detection jobs (issue 15)
         "late-point.v1", "notification.v1",  # hooks (issue #5)
         "status-event.v1", "telemetry.v1"]
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def reference(name: str) -> jsonschema.Draft202012Validator:
    """The reference validator, asserting formats as well."""
    return jsonschema.Draft202012Validator(
        schemas.load(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def examples() -> list[tuple[str, Any]]:
    return [(name, ex) for name in NAMES for ex in schemas.load(name)["examples"]]


def test_names() -> None:
    assert schemas.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = schemas.load(name)
    assert schema["$schema"] == DRAFT
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_documented(name: str) -> None:
    schema = schemas.load(name)
    assert schema["$id"].endswith(f"/{name}.json")
    assert schema["title"] and len(schema["description"]) > 80
    assert len(schema["examples"]) >= 2


@pytest.mark.parametrize(("name", "example"), examples())
def test_every_example_validates(name: str, example: Any) -> None:
    reference(name).validate(example)
    assert schemas.validator(name)(example) == example


#: Schemas of what others produce, read tolerantly: fields they do not name are ignored, so
#: a producer may add fields without breaking (docs/schemas.md, "Evolution").
TOLERANT = ("telemetry.v1",)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in TOLERANT])
def test_typos_are_caught(name: str) -> None:
    example = dict(schemas.load(name)["examples"][0])
    example["asset_idd"] = "x"
    assert not reference(name).is_valid(example)
    with pytest.raises(schemas.ValidationError):
        schemas.validator(name)(example)


@pytest.mark.parametrize("example", schemas.load("telemetry.v1")["examples"])
def test_telemetry_fields_a_producer_adds_are_ignored(example: dict[str, Any]) -> None:
    added = {**example, "firmware": "2.1", "site": {"line": 3}}
    if "readings" in added:
        added["readings"] = [{**r, "quality": "good"} for r in added["readings"]]
    assert reference("telemetry.v1").is_valid(added)
    assert decode_telemetry(orjson.dumps(added)) == decode_telemetry(orjson.dumps(example))
    assert decode_telemetry(orjson.dumps({**example, "schema_version": 1})) == \
        decode_telemetry(orjson.dumps(example))


def test_load_returns_a_fresh_copy_and_validator_is_cached() -> None:
    schemas.load("alert.v1")["title"] = "changed"
    assert schemas.load("alert.v1")["title"] == "Alert (v1)"
    assert schemas.validator("alert.v1") is schemas.validator("alert.v1")


def test_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError, match=re.escape("no schema '../pyproject'")):
        schemas.load("../pyproject")
    with pytest.raises(KeyError, match=r"has no \$defs/nope"):
        schemas.validator("telemetry.v1", "nope")


# --- telemetry -----------------------------------------------------------------------------

@pytest.mark.parametrize("example", schemas.load("telemetry.v1")["examples"])
def test_telemetry_examples_decode_to_readings(example: dict[str, Any]) -> None:
    readings = decode_telemetry(orjson.dumps(example))
    assert isinstance(readings, list), readings
    assert len(readings) == len(example.get("readings", [example]))
    assert all(isinstance(r, Reading) and r.asset_id for r in readings)


@pytest.mark.parametrize(
    "doc",
    [
        {"asset_id": "p", "ts": 1767225600000, "signals": {"t": 1}, "readings": []},
        {"readings": [{"ts": 1767225600000, "signals": {"t": 1}}]},
        {"asset_id": "p", "ts": 1767225600000, "signals": {"t": "1"}},
        {"asset_id": "p", "ts": 1767225600000, "signals": {}},
        {"asset_id": "p\n", "ts": 1767225600000, "signals": {"t": 1}},
    ],
    ids=["both forms", "batch without any asset id", "string value", "no signals",
         "trailing newline in asset id"],
)
def test_telemetry_schema_refuses(doc: dict[str, Any]) -> None:
    assert not reference("telemetry.v1").is_valid(doc)


# --- status events -------------------------------------------------------------------------

def test_status_event_kinds_do_not_mix() -> None:
    state, result = (schemas.load("status-event.v1")["examples"][i] for i in (0, 2))
    assert state["kind"] == "state" and result["kind"] == "command_result"
    mixed = {**state, "kind": "command_result"}
    assert not reference("status-event.v1").is_valid(mixed)


# --- what the codec emits validates --------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0)
ids = st.text(min_size=1, max_size=20)
anomalies = st.builds(
    Anomaly,
    inference_id=ids,
    asset_id=ids,
    ts_ms=st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999),
    model_id=ids,
    model_version=st.integers(min_value=1, max_value=1000),
    score=finite,
    severity=unit,
    sensitivity=st.integers(min_value=1, max_value=100),
    threshold=unit,
    contributions=st.dictionaries(st.text(max_size=10), finite, max_size=5),
    filled=st.booleans(),
    replay_id=st.none() | ids,
)


ANOMALY = reference("anomaly.v1")
DEAD_LETTER = reference("dead-letter.v1")
LATE = reference("late-point.v1")


@given(
    asset_id=ids,
    ts_ms=st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999),
    late_by_ms=st.integers(min_value=0, max_value=10**9),
    signals=st.dictionaries(st.text(min_size=1, max_size=8),
                            st.floats(allow_nan=False, allow_infinity=False), max_size=4),
)
def test_encode_late_validates(asset_id: str, ts_ms: int, late_by_ms: int,
                               signals: dict[str, float]) -> None:
    from streams.records import Reading

    record = loads(encode_late("inf", Reading(asset_id, ts_ms, signals), ts_ms - ts_ms % 1000,
                               late_by_ms))
    LATE.validate(record)
    assert record["ts"] == ts_ms and record["late_by_ms"] == late_by_ms


@given(anomalies)
def test_encode_anomaly_validates(a: Anomaly) -> None:
    record = loads(encode_anomaly(a))
    ANOMALY.validate(record)
    schemas.validator("anomaly.v1")(record)  # fastjsonschema asserts format: date-time
    assert record["ts"] == a.ts_ms
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(record["ts_iso"]) == epoch + timedelta(milliseconds=a.ts_ms)


@given(
    reason=st.text(min_size=1, max_size=50),
    raw=st.binary(max_size=64),
    asset_id=st.none() | ids,
    key=st.none() | st.binary(max_size=16),
    partition=st.integers(min_value=0, max_value=1000),
    offset=st.integers(min_value=0, max_value=2**62),
    received_at_ms=st.integers(min_value=0, max_value=2**45),
)
def test_encode_dead_letter_validates(
    reason: str, raw: bytes, asset_id: str | None, key: bytes | None, partition: int,
    offset: int, received_at_ms: int,
) -> None:
    out = encode_dead_letter(Rejection(reason, raw, asset_id), source_topic="telemetry",
                             partition=partition, offset=offset, key=key,
                             received_at_ms=received_at_ms)
    record = loads(out)
    DEAD_LETTER.validate(record)
    assert base64.b64decode(record["raw_b64"], validate=True) == raw


@given(st.binary(max_size=200))
def test_dead_letters_of_decoder_rejections_validate(raw: bytes) -> None:
    result = decode_telemetry(raw, key=b"pump-1")
    if isinstance(result, Rejection):
        out = encode_dead_letter(result, source_topic="telemetry", partition=0, offset=0,
                                 key=b"pump-1", received_at_ms=0)
        record = loads(out)
        DEAD_LETTER.validate(record)
        schemas.validator("dead-letter.v1")(record)


def test_anomaly_example_round_trips_through_the_codec() -> None:
    ex = schemas.load("anomaly.v1")["examples"][0]
    a = Anomaly(ex["inference_id"], ex["asset_id"], ex["ts"], ex["model_id"],
                ex["model_version"], ex["score"], ex["severity"], ex["sensitivity"],
                ex["threshold"], ex["contributions"], ex["filled"], ex["replay_id"])
    assert loads(encode_anomaly(a)) == ex
    assert math.isclose(1 - ex["sensitivity"] / 100, ex["threshold"])


# --- alerts: the examples are what the grouper publishes -----------------------------------

def alert_example_records() -> list[tuple[str, dict[str, Any]]]:
    """(Kafka key, record) the grouper publishes for the situations the alert examples show:
    pump-017 opens an asset-scope group; pump-017 and pump-018 share an inference-scope
    group of four anomalies, resolved."""
    from streams.alert_codec import encode_alert
    from streams.alerts import AlertConfig, AlertGrouperConfig

    t0, step = 1_767_225_600_000, 300_000

    def anomaly(asset: str, point: int, severity: float, contributions: dict[str, float]) -> Anomaly:
        return Anomaly("line-3-pumps", asset, t0 + point * step, "pumps-2025q4", 2, 7.4, severity,
                       70, 0.3, contributions)

    asset_scope = AlertGrouperConfig("line-3-pumps", step, AlertConfig("high-vib", 3)).build(None)
    opened = asset_scope.add(anomaly("pump-017", 0, 0.93, {"vib": 0.6, "temp": 0.4}))
    plant = AlertGrouperConfig("line-3-pumps", step,
                               AlertConfig("high-vib", 5, scope="inference")).build(None)
    plant.add_all([anomaly("pump-017", 0, 0.9, {"vib": 1.0}), anomaly("pump-018", 1, 0.97, {"vib": 1.0}),
                   anomaly("pump-017", 2, 0.8, {"vib": 1.0}), anomaly("pump-018", 3, 0.85, {"vib": 1.0})])
    resolved = plant.advance(t0 + 9 * step)
    return [(a.key, loads(encode_alert(a))) for a in (*opened, *resolved)]


def test_alert_examples_are_records_the_grouper_publishes_with_their_keys() -> None:
    produced = alert_example_records()
    assert [r["state"] for _, r in produced] == ["open", "resolved"]
    assert schemas.load("alert.v1")["examples"] == [record for _, record in produced]
    for key, record in produced:
        assert record["alert_id"] == key  # the Kafka key is the record's alert id
        assert re.fullmatch("[0-9a-f]{16}", key)  # the form the schema describes
        reference("alert.v1").validate(record)
