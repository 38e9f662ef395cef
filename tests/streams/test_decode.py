"""The telemetry edge decoder: readings or a rejection with a specific reason, never a raise."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from streams.codec import format_ts
from streams.decode import DecodeLimits, decode_telemetry
from streams.records import Reading, Rejection

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def enc(obj: Any) -> bytes:
    return orjson.dumps(obj)


def rejected(result: list[Reading] | Rejection) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


# --- accepted ------------------------------------------------------------------------------

VALID: list[tuple[str, bytes, list[Reading]]] = [
    (
        "single, epoch ms",
        enc({"asset_id": "pump-017", "ts": T0, "signals": {"temp": 71.2, "vib": 0.031}}),
        [Reading("pump-017", T0, {"temp": 71.2, "vib": 0.031})],
    ),
    (
        "single, RFC 3339 Z",
        enc({"asset_id": "pump-017", "ts": "2026-01-01T00:00:00Z", "signals": {"temp": 71.2}}),
        [Reading("pump-017", T0, {"temp": 71.2})],
    ),
    (
        "offset is converted to UTC",
        enc({"asset_id": "p", "ts": "2026-01-01T01:00:00.250+01:00", "signals": {"t": 1.0}}),
        [Reading("p", T0 + 250, {"t": 1.0})],
    ),
    (
        "negative offset",
        enc({"asset_id": "p", "ts": "2025-12-31T19:00:00-05:00", "signals": {"t": 1.0}}),
        [Reading("p", T0, {"t": 1.0})],
    ),
    (
        "lower-case t and z",
        enc({"asset_id": "p", "ts": "2026-01-01t00:00:00.5z", "signals": {"t": 1.0}}),
        [Reading("p", T0 + 500, {"t": 1.0})],
    ),
    (
        "digits beyond the millisecond are truncated",
        enc({"asset_id": "p", "ts": "2026-01-01T00:00:00.123999999Z", "signals": {"t": 1.0}}),
        [Reading("p", T0 + 123, {"t": 1.0})],
    ),
    (
        "null signal is omitted, int becomes float",
        enc({"asset_id": "p", "ts": T0, "signals": {"temp": None, "count": 3}}),
        [Reading("p", T0, {"count": 3.0})],
    ),
    (
        "all signals null: reading kept, empty",
        enc({"asset_id": "p", "ts": T0, "signals": {"temp": None}}),
        [Reading("p", T0, {})],
    ),
    (
        "integer-valued float ts (JSON Schema integer)",
        b'{"asset_id": "p", "ts": 1767225600000.0, "signals": {"t": 1}}',
        [Reading("p", T0, {"t": 1.0})],
    ),
    (
        "lowest accepted timestamp (half-open range)",
        enc({"asset_id": "p", "ts": 946_684_800_000, "signals": {"t": 1.0}}),
        [Reading("p", 946_684_800_000, {"t": 1.0})],
    ),
    (
        "unicode asset id and signal names",
        enc({"asset_id": "Pumpe-Süd/7", "ts": T0, "signals": {"température": -0.0}}),
        [Reading("Pumpe-Süd/7", T0, {"température": -0.0})],
    ),
    (
        "batch of one asset (batch asset_id)",
        enc({"asset_id": "pump-017", "readings": [
            {"ts": T0, "signals": {"temp": 71.2}},
            {"ts": "2026-01-01T00:05:00Z", "signals": {"temp": 71.9}},
        ]}),
        [Reading("pump-017", T0, {"temp": 71.2}), Reading("pump-017", T0 + 300_000, {"temp": 71.9})],
    ),
    (
        "gateway batch of several assets",
        enc({"readings": [
            {"asset_id": "pump-1", "ts": T0, "signals": {"temp": 1.0}},
            {"asset_id": "valve-2", "ts": T0, "signals": {"pos": 0.5}},
        ]}),
        [Reading("pump-1", T0, {"temp": 1.0}), Reading("valve-2", T0, {"pos": 0.5})],
    ),
    (
        "a reading's own asset_id overrides the batch's",
        enc({"asset_id": "gw-default", "readings": [
            {"ts": T0, "signals": {"a": 1.0}},
            {"asset_id": "pump-9", "ts": T0, "signals": {"a": 2.0}},
        ]}),
        [Reading("gw-default", T0, {"a": 1.0}), Reading("pump-9", T0, {"a": 2.0})],
    ),
    (
        "readings keep their order, duplicates included",
        enc({"asset_id": "p", "readings": [
            {"ts": T0 + 1, "signals": {"a": 1.0}},
            {"ts": T0, "signals": {"a": 2.0}},
            {"ts": T0, "signals": {"a": 2.0}},
        ]}),
        [Reading("p", T0 + 1, {"a": 1.0}), Reading("p", T0, {"a": 2.0}),
         Reading("p", T0, {"a": 2.0})],
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_input_decodes_to_readings(raw: bytes, expected: list[Reading]) -> None:
    assert decode_telemetry(raw) == expected


def test_integer_signal_values_become_floats() -> None:
    [reading] = decode_telemetry(enc({"asset_id": "p", "ts": T0, "signals": {"n": 7}}))  # type: ignore[misc]
    assert type(reading.signals["n"]) is float


def test_iso_and_epoch_ms_give_the_same_reading() -> None:
    iso = decode_telemetry(enc({"asset_id": "p", "ts": "2026-01-01T00:00:00.000Z",
                                "signals": {"a": 1.0}}))
    ms = decode_telemetry(enc({"asset_id": "p", "ts": T0, "signals": {"a": 1.0}}))
    assert iso == ms


def test_timestamp_cache_does_not_change_results() -> None:
    raw = enc({"asset_id": "p", "ts": "2026-01-01T00:00:00.001Z", "signals": {"a": 1.0}})
    assert decode_telemetry(raw) == decode_telemetry(raw) == [Reading("p", T0 + 1, {"a": 1.0})]


# --- rejected ------------------------------------------------------------------------------

def single(**overrides: Any) -> bytes:
    doc: dict[str, Any] = {"asset_id": "pump-1", "ts": T0, "signals": {"temp": 71.2}}
    doc.update(overrides)
    return enc({k: v for k, v in doc.items() if v is not ...})


INVALID: list[tuple[str, bytes, str]] = [
    ("empty", b"", "not JSON: Input is a zero-length, empty document at line 1 column 1"),
    ("not JSON", b"hello", "not JSON: unexpected character"),
    ("truncated", b'{"asset_id": "p"', "not JSON: unexpected end of data at line 1 column 17"),
    ("trailing comma", b'{"asset_id": "p",}', "not JSON: "),
    ("not UTF-8", b'{"asset_id": "\xff"}', "not JSON: str is not valid UTF-8"),
    ("NaN literal", b'{"asset_id": "p", "ts": 1, "signals": {"t": NaN}}',
     "non-finite number: NaN at line 1 column 45"),
    ("-Infinity literal", b'{"asset_id": "p", "ts": 1, "signals": {"t": -Infinity}}',
     "non-finite number: -Infinity at line 1 column"),
    ("overflowing number", b'{"asset_id": "p", "ts": 1, "signals": {"t": 1e400}}',
     "non-finite number: overflows a double at line 1 column 45"),
    ("array", b"[1, 2]", "schema: data must be object"),
    ("string", b'"pump-1"', "schema: data must be object"),
    ("null", b"null", "schema: data must be object"),
    ("missing signals", single(signals=...), "schema: data must contain ['signals'] properties"),
    ("missing ts", single(ts=...), "schema: data must contain ['ts'] properties"),
    ("missing asset_id", single(asset_id=...), "schema: data must contain ['asset_id'] properties"),
    ("typo'd required field", enc({"asset_id": "p", "ts": T0, "signal": {"t": 1}}),
     "schema: data must contain ['signals'] properties"),
    ("a single reading that is also a batch",
     enc({"asset_id": "p", "ts": T0, "signals": {"t": 1}, "readings": [{"ts": T0, "signals": {"a": 1.0}}]}),
     "schema: data.ts must not be there"),
    ("a version this deployment does not read",
     enc({"schema_version": 2, "asset_id": "p", "ts": T0, "signals": {"t": 1}}),
     "schema: unsupported schema_version 2: this deployment reads telemetry version(s) 1"),
    ("string signal", single(signals={"temp": "hot"}),
     "schema: data.signals.temp must be number or null"),
    ("bool signal", single(signals={"temp": True}),
     "schema: data.signals.temp must be number or null"),
    ("nested signal", single(signals={"temp": {"v": 1}}),
     "schema: data.signals.temp must be number or null"),
    ("no signals", single(signals={}), "schema: data.signals must contain at least 1 properties"),
    ("signals not an object", single(signals=[1.0]), "schema: data.signals must be object"),
    ("empty signal name", single(signals={"": 1.0}), "schema: data.signals must be named by"),
    ("null ts", single(ts=None), "schema: data.ts must be string or integer"),
    ("bool ts", single(ts=True), "schema: data.ts must be string or integer"),
    ("fractional ts", single(ts=1767225600000.5), "schema: data.ts must be string or integer"),
    ("overlong ts string", single(ts="2026-01-01T00:00:00." + "0" * 60 + "Z"),
     "schema: data.ts must be shorter than or equal to 64 characters"),
    ("null asset_id", single(asset_id=None), "schema: data.asset_id must be string"),
    ("numeric asset_id", single(asset_id=17), "schema: data.asset_id must be string"),
    ("empty asset_id", single(asset_id=""),
     "schema: data.asset_id must be longer than or equal to 1 characters"),
    ("overlong asset_id", single(asset_id="p" * 257),
     "schema: data.asset_id must be shorter than or equal to 256 characters"),
    ("asset_id with outer whitespace", single(asset_id="pump-1 "),
     "schema: data.asset_id must have no control characters and no leading or trailing"),
    ("asset_id with a newline", single(asset_id="pump\n1"),
     "schema: data.asset_id must have no control characters"),
    ("asset_id with a final newline", single(asset_id="pump-1\n"),
     "schema: data.asset_id must have no control characters"),
    ("naive timestamp", single(ts="2026-01-01T00:00:00"),
     "timestamp has no timezone: '2026-01-01T00:00:00'"),
    ("naive timestamp with fraction", single(ts="2026-01-01T00:00:00.123456"),
     "timestamp has no timezone: "),
    ("date only", single(ts="2026-01-01"), "timestamp not RFC 3339: '2026-01-01'"),
    ("space separator", single(ts="2026-01-01 00:00:00Z"), "timestamp not RFC 3339: "),
    ("basic ISO format", single(ts="20260101T000000Z"), "timestamp not RFC 3339: "),
    ("offset without colon", single(ts="2026-01-01T00:00:00+0100"), "timestamp not RFC 3339: "),
    ("digits as a string", single(ts="1767225600000"), "timestamp not RFC 3339: '1767225600000'"),
    ("non-ASCII digits", single(ts="２０２６-01-01T00:00:00Z"), "timestamp not RFC 3339: "),
    ("no such day", single(ts="2026-02-30T00:00:00Z"),
     "timestamp invalid: '2026-02-30T00:00:00Z' (day is out of range for month)"),
    ("no such hour", single(ts="2026-01-01T24:00:00Z"), "timestamp invalid: "),
    ("leap second", single(ts="2026-01-01T23:59:60Z"), "timestamp invalid: "),
    ("absurd offset", single(ts="2026-01-01T00:00:00+25:00"), "timestamp invalid: "),
    ("year 0", single(ts="0000-01-01T00:00:00Z"),
     "timestamp invalid: '0000-01-01T00:00:00Z' (year 0 is out of range)"),
    ("before year 1 in UTC", single(ts="0001-01-01T00:00:00+01:00"),
     "timestamp out of range: -62135600400000 ms not in [2000-01-01T00:00:00.000Z"),
    ("after year 9999 in UTC", single(ts="9999-12-31T23:59:59-01:00"),
     "timestamp out of range: 253402304399000 ms not in"),
    ("epoch zero", single(ts=0),
     "timestamp out of range: 1970-01-01T00:00:00.000Z not in [2000-01-01T00:00:00.000Z, "
     "2100-01-01T00:00:00.000Z)"),
    ("epoch seconds", single(ts=1_767_225_600),
     "timestamp out of range: 1970-01-21T10:53:45.600Z not in [2000-01-01T00:00:00.000Z, "
     "2100-01-01T00:00:00.000Z); epoch seconds? ts must be epoch milliseconds"),
    ("epoch microseconds", single(ts=1_767_225_600_000_000),
     "timestamp out of range: 1767225600000000 ms not in [2000-01-01T00:00:00.000Z"),
    ("negative", single(ts=-1), "timestamp out of range: 1969-12-31T23:59:59.999Z"),
    ("end of range is excluded", single(ts=4_102_444_800_000),
     "timestamp out of range: 2100-01-01T00:00:00.000Z"),
    ("beyond any calendar", single(ts=18_446_744_073_709_551_615),
     "timestamp out of range: 18446744073709551615 ms not in"),
    ("old ISO", single(ts="1999-12-31T23:59:59.999Z"),
     "timestamp out of range: 1999-12-31T23:59:59.999Z"),
    ("too many signals", single(signals={f"s{i}": 1.0 for i in range(257)}),
     "too many signals: 257 > 256"),
]


@pytest.mark.parametrize(("raw", "reason"), [v[1:] for v in INVALID], ids=[v[0] for v in INVALID])
def test_invalid_input_is_rejected_with_a_specific_reason(raw: bytes, reason: str) -> None:
    rejection = rejected(decode_telemetry(raw))
    assert rejection.reason.startswith(reason), rejection.reason
    assert rejection.raw == raw


def test_the_epoch_microseconds_hint() -> None:
    reason = rejected(decode_telemetry(single(ts=1_767_225_600_000_000))).reason
    assert reason.endswith("; epoch microseconds? ts must be epoch milliseconds")


def test_oversize_is_rejected_before_parsing() -> None:
    raw = b"x" * 2_000_000  # not JSON either: size is checked first
    assert rejected(decode_telemetry(raw)).reason == "oversize: 2000000 bytes > 1048576"


def test_limits_are_configurable() -> None:
    raw = single(signals={"a": 1.0, "b": 2.0, "c": 3.0})
    limits = DecodeLimits(max_bytes=len(raw), max_signals=2)
    assert rejected(decode_telemetry(raw, limits=limits)).reason == "too many signals: 3 > 2"
    assert rejected(decode_telemetry(raw + b" ", limits=DecodeLimits(max_bytes=len(raw))))
    narrow = DecodeLimits(min_ts_ms=T0, max_ts_ms=T0 + 1)
    assert decode_telemetry(single(ts=T0), limits=narrow) != []
    assert rejected(decode_telemetry(single(ts=T0 + 1), limits=narrow)).reason.startswith(
        "timestamp out of range: 2026-01-01T00:00:00.001Z not in [2026-01-01T00:00:00.000Z, "
    )


def test_schema_errors_are_reported_before_timestamp_errors() -> None:
    raw = single(ts="2026-01-01T00:00:00", signals={"temp": "hot"})
    assert rejected(decode_telemetry(raw)).reason == (
        "schema: data.signals.temp must be number or null"
    )


def test_orjson_refuses_non_finite_numbers_so_no_second_pass_is_needed() -> None:
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"[1e309]"):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)


# --- batches -------------------------------------------------------------------------------

def batch(readings: list[Any], asset_id: str | None = "pump-1", **extra: Any) -> bytes:
    doc: dict[str, Any] = {"readings": readings, **extra}
    if asset_id is not None:
        doc["asset_id"] = asset_id
    return enc(doc)


GOOD = {"ts": T0, "signals": {"a": 1.0}}

BAD_BATCHES: list[tuple[str, bytes, str]] = [
    ("empty batch", batch([]), "schema: data.readings must contain at least 1 items"),
    ("readings not a list", batch({"ts": T0}), "schema: data.readings must be array"),  # type: ignore[arg-type]
    ("too many readings", batch([GOOD] * 10_001),
     "schema: data.readings must contain less than or equal to 10000 items"),
    ("extra batch field", batch([GOOD], ts=T0), "schema: data.ts must not be there"),
    ("batch asset_id invalid", batch([GOOD], asset_id=""),
     "schema: data.asset_id must be longer than or equal to 1 characters"),
    ("null batch asset_id", enc({"asset_id": None, "readings": [{"asset_id": "p", **GOOD}]}),
     "schema: data.asset_id must be string"),
    ("reading without any asset_id", batch([GOOD, GOOD], asset_id=None),
     "schema: data.readings[0] must contain ['asset_id'] properties"),
    ("reading not an object", batch([GOOD, 5]), "schema: data.readings[1] must be object"),
    ("bad signal in reading 3", batch([GOOD] * 3 + [{"ts": T0, "signals": {"a": "x"}}]),
     "schema: data.readings[3].signals.a must be number or null"),
    ("typo in a reading", batch([GOOD, {"ts": T0, "signal": {"a": 1.0}}]),
     "schema: data.readings[1] must contain ['signals'] properties"),
    ("naive timestamp in reading 2",
     batch([GOOD, GOOD, {"ts": "2026-01-01T00:00:00", "signals": {"a": 1.0}}]),
     "readings[2]: timestamp has no timezone: '2026-01-01T00:00:00'"),
    ("out-of-range in reading 1", batch([GOOD, {"ts": 5, "signals": {"a": 1.0}}]),
     "readings[1]: timestamp out of range: 1970-01-01T00:00:00.005Z"),
    ("first failing reading is named", batch([GOOD, {"ts": 5, "signals": {"a": 1.0}},
                                              {"ts": "x", "signals": {"a": 1.0}}]),
     "readings[1]: timestamp out of range"),
    ("schema before timestamps, whatever the order",
     batch([{"ts": 5, "signals": {"a": 1.0}}, {"ts": T0, "signals": {"a": None, "b": []}}]),
     "schema: data.readings[1].signals.b must be number or null"),
]


@pytest.mark.parametrize(("raw", "reason"), [v[1:] for v in BAD_BATCHES],
                         ids=[v[0] for v in BAD_BATCHES])
def test_one_bad_reading_rejects_the_whole_batch(raw: bytes, reason: str) -> None:
    rejection = rejected(decode_telemetry(raw))
    assert rejection.reason.startswith(reason), rejection.reason
    assert rejection.raw == raw


def test_batch_and_single_forms_decode_identically() -> None:
    readings = [{"ts": T0 + i, "signals": {"a": float(i), "b": None}} for i in range(5)]
    as_batch = decode_telemetry(batch(readings))
    as_singles = [r for x in readings for r in decode_telemetry(single(**x))]  # type: ignore[union-attr]
    assert as_batch == as_singles


def test_large_batch_decodes() -> None:
    readings = [{"ts": T0 + i * 1000, "signals": {"a": 1.0}} for i in range(10_000)]
    out = decode_telemetry(batch(readings))
    assert isinstance(out, list) and len(out) == 10_000 and out[-1].ts_ms == T0 + 9_999_000


# --- key and the asset of a rejection ------------------------------------------------------

def test_key_mismatch_is_accepted_and_the_record_wins() -> None:
    assert decode_telemetry(single(asset_id="pump-2"), key=b"pump-1") == [
        Reading("pump-2", T0, {"temp": 71.2})
    ]


def test_rejection_names_the_asset_from_the_record_then_the_key() -> None:
    assert rejected(decode_telemetry(single(ts=0), key=b"k")).asset_id == "pump-1"
    assert rejected(decode_telemetry(b"garbage", key=b"pump-7")).asset_id == "pump-7"
    assert rejected(decode_telemetry(b"garbage", key=b"\xff")).asset_id is None
    assert rejected(decode_telemetry(b"garbage")).asset_id is None
    gateway = batch([{"asset_id": "v-1", "ts": T0, "signals": {"a": 1.0}},
                     {"asset_id": "v-2", "ts": 1, "signals": {"a": 1.0}}], asset_id=None)
    assert rejected(decode_telemetry(gateway, key=b"gw")).asset_id == "v-2"


# --- never raises ----------------------------------------------------------------------------

def assert_well_formed(result: object, raw: bytes) -> None:
    if isinstance(result, Rejection):
        assert result.reason and not result.reason.startswith("decoder error"), result.reason
        assert result.raw == raw
    else:
        assert isinstance(result, list) and result
        assert all(isinstance(r, Reading) for r in result)


@given(st.binary(max_size=512), st.none() | st.binary(max_size=16))
def test_arbitrary_bytes_never_raise(raw: bytes, key: bytes | None) -> None:
    assert_well_formed(decode_telemetry(raw, key), raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_arbitrary_json_values_never_raise(value: Any) -> None:
    raw = orjson.dumps(value)
    assert_well_formed(decode_telemetry(raw), raw)


# --- the fast pass agrees with the schema --------------------------------------------------

MIN_MS, MAX_MS = DecodeLimits().min_ts_ms, DecodeLimits().max_ts_ms
good_ts = st.one_of(
    st.integers(min_value=MIN_MS, max_value=MAX_MS - 1),
    st.integers(min_value=MIN_MS, max_value=MAX_MS - 1).map(
        lambda ms: format_ts(ms).replace(".000Z", "Z")
    ),
)
odd_ts = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from(["2026-01-01T00:00:00", "x", "", "9" * 65, "2026-01-01T00:00:00+0100"]),
    st.floats(allow_nan=False, allow_infinity=False), st.none(), st.booleans(), st.just([T0]),
)
good_names = st.sampled_from(["a", "b", "temp", "vib", "Ü"])
odd_names = st.sampled_from(["", "x" * 257])
good_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.none(),
                        st.integers(min_value=-(2**63), max_value=2**64 - 1))
odd_values: st.SearchStrategy[Any] = st.one_of(
    st.booleans(), st.text(max_size=3), st.just([1.0]), st.just({})
)
good_ids = st.sampled_from(["pump-1", "ü-2", "a", "p" * 256, "gw 1"])
odd_ids = st.one_of(st.sampled_from(["", " p", "p ", "p\n", "p\x00q", "p" * 257, 7]),
                    st.text(max_size=4), st.none())


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Good values nine times in ten, so that a fair share of documents are valid."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 0 else good)


signal_maps = mostly(
    st.dictionaries(mostly(good_names, odd_names), mostly(good_values, odd_values),
                    min_size=1, max_size=4),
    st.one_of(st.just({}), st.just([1.0]), st.none()),
)
extra_fields = st.dictionaries(st.sampled_from(["asset_id", "ts", "signals", "readings", "x",
                                                "schema_version"]),
                               st.none() | st.integers(-5, 5), max_size=1)


@st.composite
def reading_docs(draw: st.DrawFn, batch_member: bool) -> Any:
    if draw(st.integers(0, 29)) == 0:
        return draw(json_values)
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > (4 if batch_member else 0):
        doc["asset_id"] = draw(mostly(good_ids, odd_ids))
    if draw(st.integers(0, 19)) > 0:
        doc["ts"] = draw(mostly(good_ts, odd_ts))
    if draw(st.integers(0, 19)) > 0:
        doc["signals"] = draw(signal_maps)
    if draw(st.integers(0, 19)) == 0:
        doc.update(draw(extra_fields))
    return doc


@st.composite
def telemetry_docs(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(reading_docs(batch_member=False))
    readings = draw(st.lists(reading_docs(batch_member=True), max_size=4))
    doc: dict[str, Any] = {"readings": readings}
    if draw(st.integers(0, 3)) > 0:
        doc["asset_id"] = draw(mostly(good_ids, odd_ids))
    if draw(st.integers(0, 19)) == 0:
        doc.update(draw(extra_fields))
    return doc


REFERENCE = jsonschema.Draft202012Validator(schemas.load("telemetry.v1"))  # formats: annotations


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(telemetry_docs())
def test_fast_pass_and_schema_agree(doc: Any) -> None:
    raw = orjson.dumps(doc)
    result = decode_telemetry(raw)
    schema_valid = REFERENCE.is_valid(doc)
    if schema_valid:
        assert not (isinstance(result, Rejection) and result.reason.startswith("schema:")), (
            result
        )
    else:
        assert isinstance(result, Rejection) and result.reason.startswith("schema: "), result
        assert result.reason != "schema: not a valid telemetry record"
