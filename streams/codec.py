"""The one JSON codec of assetwatch: orjson with fixed options, and the record encoders.

Everything assetwatch writes to a topic goes through here, so every record has one byte form
and validates against its schema in ``schemas/`` (``tests/test_schemas.py`` checks it).

Fixed choices:

* UTF-8, compact, keys in insertion order (the encoders build dicts in schema order);
* non-finite floats are refused (``ValueError``): orjson would silently write NaN and
  ±Infinity as ``null``; :func:`loads` never returns them (orjson rejects ``NaN``,
  ``Infinity`` and numbers that overflow a double, such as ``1e400``);
* ``datetime`` and dataclass objects are refused (``TypeError``): time is epoch-ms ``int``
  in the core and becomes text only through :func:`format_ts`; records are encoded by their
  explicit encoder, not by reflection. Non-``str`` keys, integers beyond 64 bits and numpy
  scalars and arrays are refused too (orjson's ``TypeError``): convert with ``float()`` or
  ``.tolist()`` at the boundary (:func:`encode_anomaly` does it for its fields).

>>> dumps({"asset_id": "pump-1", "ts": 1767225600000, "signals": {"temp": 71.2}})
b'{"asset_id":"pump-1","ts":1767225600000,"signals":{"temp":71.2}}'
>>> loads(b'{"temp": 71.2}')
{'temp': 71.2}
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.records import Anomaly, Reading, Rejection

__all__ = [
    "JSONDecodeError",
    "dumps",
    "encode_anomaly",
    "encode_dead_letter",
    "format_ts",
    "loads",
]

#: What :func:`loads` raises on bad input (a subclass of ``ValueError``).
JSONDecodeError = orjson.JSONDecodeError

#: originals up to this size are dead-lettered whole (the edge's own size limit)
DEAD_LETTER_MAX_RAW_BYTES = 1_048_576
#: what is kept of a larger original
DEAD_LETTER_PREFIX_BYTES = 65_536

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_dumps = orjson.dumps


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON; refuse NaN and ±Infinity with ``ValueError``.

    >>> dumps({"score": 1.5, "filled": False, "replay_id": None})
    b'{"score":1.5,"filled":false,"replay_id":null}'
    >>> dumps({"score": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: non-finite number at $.score: nan
    """
    out = _dumps(obj, option=_OPTIONS)
    # orjson writes a non-finite float as null, so output without "null" had none
    if b"null" in out:
        _check_finite(obj, "$")
    return out


def loads(b: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON; raises :data:`JSONDecodeError` (a ``ValueError``) on anything invalid.

    Never returns NaN or ±Infinity: those literals, and numbers that overflow a double, are
    decode errors. Of duplicate keys, the last wins.

    >>> loads(b'[1, 2.5, "x", null]')
    [1, 2.5, 'x', None]
    """
    return orjson.loads(b)


def _check_finite(obj: Any, path: str) -> None:
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite number at {path}: {obj}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_finite(v, f"{path}[{i}]")


def format_ts(ts_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC text with milliseconds and ``Z``.

    >>> format_ts(1767225600000)
    '2026-01-01T00:00:00.000Z'
    >>> format_ts(-1)
    '1969-12-31T23:59:59.999Z'
    """
    try:
        dt = _EPOCH + timedelta(milliseconds=ts_ms)
    except OverflowError:
        raise ValueError(f"timestamp beyond years 1-9999: {ts_ms} ms") from None
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def _finite(value: float, field: str) -> float:
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"anomaly {field} is not finite: {f}")
    return f


def encode_anomaly(a: Anomaly) -> bytes:
    """The anomaly record (``schemas/anomaly.v1.json``); its Kafka key is ``a.key``.

    Floats (numpy ones too) become plain floats; a non-finite one raises ``ValueError``.

    >>> a = Anomaly("inf-a", "pump-1", 1767225600000, "m", 1, 7.5, 0.9, 70, 0.3, {"vib": 1.0})
    >>> loads(encode_anomaly(a))["ts_iso"], a.key
    ('2026-01-01T00:00:00.000Z', 'inf-a/pump-1/1767225600000')
    """
    record = {
        "inference_id": a.inference_id,
        "asset_id": a.asset_id,
        "ts": a.ts_ms,
        "ts_iso": format_ts(a.ts_ms),
        "model_id": a.model_id,
        "model_version": a.model_version,
        "score": _finite(a.score, "score"),
        "severity": _finite(a.severity, "severity"),
        "sensitivity": a.sensitivity,
        "threshold": _finite(a.threshold, "threshold"),
        "contributions": {
            k: _finite(v, f"contributions.{k}") for k, v in a.contributions.items()
        },
        "filled": bool(a.filled),
        "replay_id": a.replay_id,
    }
    return _dumps(record, option=_OPTIONS)


def encode_dead_letter(
    rejection: Rejection,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    received_at_ms: int,
    max_raw_bytes: int = DEAD_LETTER_MAX_RAW_BYTES,
) -> bytes:
    """The dead-letter record (``schemas/dead-letter.v1.json``) of a rejected input.

    The original value travels as base64 in ``raw_b64``; the key as UTF-8 text, plus its
    exact bytes in ``key_b64`` when it is not valid UTF-8. An original longer than
    ``max_raw_bytes`` keeps only its first :data:`DEAD_LETTER_PREFIX_BYTES` bytes
    (``raw_truncated``), with ``raw_size`` and ``raw_sha256`` of the whole; the whole stays
    on the source topic at the recorded partition and offset.

    >>> r = Rejection("not JSON: unexpected end of data at line 1 column 2", b"{")
    >>> rec = loads(encode_dead_letter(r, source_topic="telemetry", partition=0, offset=7,
    ...                                key=b"pump-1", received_at_ms=1767225600000))
    >>> rec["raw_b64"], rec["key"], rec["reason"][:8], rec["raw_truncated"]
    ('ew==', 'pump-1', 'not JSON', False)
    >>> big = loads(encode_dead_letter(Rejection("oversize", b"x" * 10), source_topic="t",
    ...                                partition=0, offset=1, key=None, received_at_ms=0,
    ...                                max_raw_bytes=4))
    >>> big["raw_size"], big["raw_truncated"], len(big["raw_sha256"])
    (10, True, 64)
    """
    record: dict[str, Any] = {
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": None,
        "asset_id": rejection.asset_id,
        "reason": rejection.reason,
        "raw_b64": "",
        "raw_size": len(rejection.raw),
        "raw_truncated": False,
        "received_at": received_at_ms,
    }
    raw = rejection.raw
    if len(raw) > max_raw_bytes:
        record["raw_sha256"] = hashlib.sha256(raw).hexdigest()
        record["raw_truncated"] = True
        raw = raw[: min(DEAD_LETTER_PREFIX_BYTES, max_raw_bytes)]
    record["raw_b64"] = base64.b64encode(raw).decode("ascii")
    if key is not None:
        try:
            record["key"] = bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            record["key"] = bytes(key).decode("utf-8", errors="backslashreplace")
            record["key_b64"] = base64.b64encode(key).decode("ascii")
    return _dumps(record, option=_OPTIONS)


def encode_telemetry(readings: Sequence[Reading]) -> bytes:
    """One telemetry message (``schemas/telemetry.v1.json``): the single form for one reading,
    the batch form for several.

    >>> encode_telemetry([Reading("p1", 1767225600000, {"t": 1.5})])
    b'{"asset_id":"p1","ts":1767225600000,"signals":{"t":1.5}}'
    >>> loads(encode_telemetry([Reading("p1", 1, {}), Reading("p2", 2, {})]))["readings"][1]["asset_id"]
    'p2'
    """
    if len(readings) == 1:
        r = readings[0]
        return dumps({"asset_id": r.asset_id, "ts": r.ts_ms, "signals": dict(r.signals)})
    return dumps({"readings": [
        {"asset_id": r.asset_id, "ts": r.ts_ms, "signals": dict(r.signals)} for r in readings
    ]})


def encode_late(inference_id: str, reading: Reading, slot_ms: int, late_by_ms: int) -> bytes:
    """The late-point record (``schemas/late-point.v1.json``) of a point that came too late.

    >>> loads(encode_late("pumps", Reading("p1", 1767225601000, {"t": 1.0}), 1767225600000, 250))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'inference_id': 'pumps', 'asset_id': 'p1', 'ts': 1767225601000,
     'ts_iso': '2026-01-01T00:00:01.000Z', 'slot_ts': 1767225600000, 'late_by_ms': 250,
     'signals': {'t': 1.0}}
    """
    return dumps({
        "inference_id": inference_id,
        "asset_id": reading.asset_id,
        "ts": reading.ts_ms,
        "ts_iso": format_ts(reading.ts_ms),
        "slot_ts": slot_ms,
        "late_by_ms": late_by_ms,
        "signals": dict(reading.signals),
    })
