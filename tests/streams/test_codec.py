"""The one JSON codec: fixed options, no non-finite numbers out, exact timestamps."""

from __future__ import annotations

import base64
import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codec import (
    JSONDecodeError,
    dumps,
    encode_anomaly,
    encode_dead_letter,
    format_ts,
    loads,
)
from streams.decode import decode_telemetry
from streams.records import Anomaly, Reading, Rejection

T0 = 1_767_225_600_000


def anomaly(**overrides: Any) -> Anomaly:
    fields: dict[str, Any] = dict(
        inference_id="inf-a", asset_id="pump-1", ts_ms=T0, model_id="m", model_version=3,
        score=7.5, severity=0.9, sensitivity=70, threshold=0.3,
        contributions={"temp": 0.25, "vib": 0.75},
    )
    fields.update(overrides)
    return Anomaly(**fields)


# --- dumps / loads -------------------------------------------------------------------------

def test_dumps_is_compact_utf8_in_insertion_order() -> None:
    assert dumps({"b": 1, "a": [1.5, None, True], "é": "ü"}) == (
        '{"b":1,"a":[1.5,null,true],"é":"ü"}'.encode()
    )


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        (float("nan"), "$"),
        ({"score": float("inf")}, "$.score"),
        ({"c": {"vib": -math.inf}}, "$.c.vib"),
        ([1.0, None, float("nan")], "$[2]"),
        ({"xs": (1.0, float("nan"))}, "$.xs[1]"),
    ],
)
def test_dumps_refuses_non_finite_numbers(obj: Any, where: str) -> None:
    with pytest.raises(ValueError, match=rf"non-finite number at {re_escape(where)}: "):
        dumps(obj)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_dumps_keeps_real_nulls_and_the_word_null() -> None:
    assert dumps({"replay_id": None, "note": "null"}) == b'{"replay_id":null,"note":"null"}'


@pytest.mark.parametrize(
    "obj",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        Reading("p", T0, {"a": 1.0}),
        {1: "non-str key"},
        2**64,
        np.float32(1.0),
        np.float64(1.0),
        np.array([1.0]),
        {1.5},
    ],
    ids=["datetime", "dataclass", "int key", "int beyond 64 bits", "numpy float32",
         "numpy float64", "numpy array", "set"],
)
def test_dumps_refuses_what_has_no_single_json_form(obj: Any) -> None:
    with pytest.raises(TypeError):
        dumps(obj)


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"{", b"", b"\xff"])
def test_loads_refuses_invalid_and_non_finite(raw: bytes) -> None:
    with pytest.raises(JSONDecodeError):
        loads(raw)
    assert issubclass(JSONDecodeError, ValueError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_dumps_then_loads_round_trips(value: Any) -> None:
    assert loads(dumps(value)) == value


# --- format_ts -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ts_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (T0, "2026-01-01T00:00:00.000Z"),
        (T0 + 86_399_999, "2026-01-01T23:59:59.999Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
    ],
)
def test_format_ts(ts_ms: int, text: str) -> None:
    assert format_ts(ts_ms) == text


@pytest.mark.parametrize("ts_ms", [253_402_300_800_000, -62_135_596_800_001, 2**64])
def test_format_ts_beyond_the_calendar_raises_value_error(ts_ms: int) -> None:
    with pytest.raises(ValueError, match="timestamp beyond years 1-9999"):
        format_ts(ts_ms)


@given(st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999))
def test_format_ts_matches_datetime_and_decodes_back(ts_ms: int) -> None:
    text = format_ts(ts_ms)
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
    assert datetime.fromisoformat(text) == expected
    raw = dumps({"asset_id": "p", "ts": text, "signals": {"a": 1.0}})
    assert decode_telemetry(raw) == [Reading("p", ts_ms, {"a": 1.0})]


# --- encode_anomaly ------------------------------------------------------------------------

def test_encode_anomaly_writes_every_field() -> None:
    record = orjson.loads(encode_anomaly(anomaly(filled=True, replay_id="rp-1")))
    assert record == {
        "inference_id": "inf-a", "asset_id": "pump-1", "ts": T0,
        "ts_iso": "2026-01-01T00:00:00.000Z", "model_id": "m", "model_version": 3,
        "score": 7.5, "severity": 0.9, "sensitivity": 70, "threshold": 0.3,
        "contributions": {"temp": 0.25, "vib": 0.75}, "filled": True, "replay_id": "rp-1",
    }


def test_encode_anomaly_takes_numpy_floats() -> None:
    a = anomaly(score=np.float64(2.5), severity=np.float32(0.5),
                contributions={"vib": np.float32(0.25)})
    record = loads(encode_anomaly(a))
    assert (record["score"], record["severity"], record["contributions"]) == (
        2.5, 0.5, {"vib": 0.25}
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"score": math.nan}, "score"),
        ({"severity": math.inf}, "severity"),
        ({"threshold": -math.inf}, "threshold"),
        ({"contributions": {"vib": math.nan}}, "contributions.vib"),
    ],
)
def test_encode_anomaly_refuses_non_finite_numbers(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"anomaly {field} is not finite"):
        encode_anomaly(anomaly(**overrides))


def test_anomaly_key_is_separate_from_the_value() -> None:
    a = anomaly()
    assert a.key == f"inf-a/pump-1/{T0}"
    assert "key" not in loads(encode_anomaly(a))


# --- encode_dead_letter --------------------------------------------------------------------

def dead_letter(rejection: Rejection, key: bytes | None) -> dict[str, Any]:
    return dict(loads(encode_dead_letter(rejection, source_topic="telemetry", partition=2,
                                         offset=41, key=key, received_at_ms=T0 + 5)))


def test_encode_dead_letter_keeps_the_original_bytes() -> None:
    raw = b'\x00\xff{"not": json'
    record = dead_letter(Rejection("not JSON: x", raw, "pump-1"), b"pump-1")
    assert record == {
        "source_topic": "telemetry", "partition": 2, "offset": 41, "key": "pump-1",
        "asset_id": "pump-1", "reason": "not JSON: x",
        "raw_b64": base64.b64encode(raw).decode(), "raw_size": len(raw), "raw_truncated": False,
        "received_at": T0 + 5,
    }
    assert base64.b64decode(record["raw_b64"], validate=True) == raw


def test_encode_dead_letter_without_key() -> None:
    record = dead_letter(Rejection("r", b"x"), None)
    assert record["key"] is None and record["asset_id"] is None and "key_b64" not in record


def test_encode_dead_letter_keeps_a_binary_key_exactly() -> None:
    record = dead_letter(Rejection("r", b"x"), b"pump-\xff")
    assert record["key"] == "pump-\\xff"
    assert base64.b64decode(record["key_b64"]) == b"pump-\xff"


def test_encode_dead_letter_of_a_decoder_rejection() -> None:
    raw = b'{"asset_id": "pump-1", "ts": 0, "signals": {"t": 1}}'
    rejection = decode_telemetry(raw, key=b"pump-1")
    assert isinstance(rejection, Rejection)
    record = dead_letter(rejection, b"pump-1")
    assert record["reason"].startswith("timestamp out of range: 1970-01-01T00:00:00.000Z")
    assert base64.b64decode(record["raw_b64"]) == raw


def test_records_are_frozen_so_encoding_cannot_change_them() -> None:
    a = anomaly()
    encode_anomaly(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.score = 0.0  # type: ignore[misc]


def test_encode_dead_letter_keeps_a_prefix_and_the_hash_of_an_oversize_original() -> None:
    import hashlib

    from streams.codec import DEAD_LETTER_MAX_RAW_BYTES, DEAD_LETTER_PREFIX_BYTES

    raw = bytes(range(256)) * (DEAD_LETTER_MAX_RAW_BYTES // 256 + 1)
    record = dead_letter(Rejection("oversize: too big", raw), None)
    assert record["raw_truncated"] is True
    assert record["raw_size"] == len(raw)
    assert record["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert base64.b64decode(record["raw_b64"]) == raw[:DEAD_LETTER_PREFIX_BYTES]
