"""The edge decoder for telemetry: raw Kafka value bytes → readings, or a rejection.

Pure: no wall clock, no environment, no I/O. :func:`decode_telemetry` never raises; bad
input comes back as a :class:`~streams.records.Rejection` (reason + original bytes) for the
glue to send to the dead-letter topic and count (SPEC §3).

Checks, in order, each with a short specific reason:

1. **size**, before parsing: ``oversize: 2000000 bytes > 1048576``;
2. **JSON** (orjson): ``not JSON: unexpected end of data at line 1 column 7``;
3. **schema** (``schemas/telemetry.v1.json``): ``schema: data.signals.temp must be number or
   null``, ``schema: data.readings[3] must contain ['ts'] properties``;
4. **non-finite numbers**: orjson refuses ``NaN``/``Infinity`` literals and numbers that
   overflow a double (``1e400``) while parsing, so they are reported from step 2 as
   ``non-finite number: NaN at line 1 column 30`` and nothing non-finite survives parsing
   (``tests/streams/test_decode.py`` pins that orjson behaviour, so no second pass is made);
5. **timestamp**: an integer is epoch milliseconds; a string must be RFC 3339 with a
   timezone designator (``Z`` or ``±hh:mm``) — ``timestamp has no timezone: '…'``,
   ``timestamp not RFC 3339: '…'``, ``timestamp invalid: '…' (…)``; digits beyond the
   millisecond are truncated; the instant must lie in ``[min_ts_ms, max_ts_ms)``:
   ``timestamp out of range: 1970-01-01T00:00:00.000Z not in [2000-…, 2100-…)``, with a hint
   when the number looks like epoch seconds or microseconds;
6. **asset id**: each reading's own ``asset_id``, else the batch's; the schema requires one
   and restricts it to 1–256 characters, no control characters, no outer whitespace.
   Then ``too many signals: 300 > 256`` against :attr:`DecodeLimits.max_signals`.
7. **arrival** (:func:`check_arrival`, where the record's Kafka timestamp is known): a
   reading stamped more than :attr:`DecodeLimits.max_ahead_ms` (1 h) after its record
   reached Kafka is refused — ``timestamp ahead of arrival: 2099-01-01T… is more than 1 h
   after the record reached Kafka (…)``.

Decisions (also in the schema's description):

* **null signal values** mean "not measured this time": the signal is left out of that
  :class:`Reading` (the model's fill method handles it downstream). A reading whose signals
  are all null is kept, with empty ``signals``: its timestamp is still information.
  Integer values become ``float``.
* **key ≠ asset_id**: accepted; the record's ``asset_id`` wins. The key is only used to name
  the asset of a rejection when the record cannot. Gateway batches legitimately carry
  readings of several assets under one key, so the glue must route every reading by
  ``Reading.asset_id`` (re-keying where it differs from the message key) before it touches
  per-asset state; a mismatched single reading is just a one-reading gateway batch.
* **one bad reading rejects the whole message**, with one reason naming the reading's index
  (``readings[3]: timestamp has no timezone: …``). The dead-letter record then holds exactly
  the bytes that were not accepted, so re-driving it after a fix neither loses nor
  duplicates readings, and a producer bug shows up once per message, not per reading.
* duplicate JSON keys: the last wins (orjson). Asset ids are case-sensitive and not
  normalised.
* **fields the schema does not name are ignored**, at the message and the reading level, so
  a producer may add fields without breaking (docs/schemas.md, "Evolution"); a single
  reading may not carry ``readings`` nor a batch ``ts`` or ``signals`` (the record would be
  both). A ``schema_version`` other than the ones read here (:data:`SCHEMA_VERSIONS`) is
  rejected: ``schema: unsupported schema_version 2: this deployment reads telemetry
  version(s) 1``.

Performance: the schema is mirrored by a hand-written pass that checks and converts in one
go (epoch-ms integers take the fast path; RFC 3339 strings are parsed through a cache, and
on a miss by a regex plus ``datetime.fromisoformat``); the compiled fastjsonschema validator
runs only when that pass finds a problem, to word the reason from the schema itself.
``tests/streams/test_decode.py`` checks with Hypothesis that the pass and the schema agree.
Measured on the development machine (Python 3.11, orjson 3.13, fastjsonschema 2.22; a loop
over pre-encoded messages of four float signals, distinct timestamps so the cache does not
flatter; best of 5; µs per reading, everything from bytes to ``Reading`` included):

==========================  ===========  ===========
message                     epoch-ms ts  RFC 3339 ts
==========================  ===========  ===========
single reading              2.3          3.8
batch of 100, one asset     1.3          2.9
==========================  ===========  ===========

Of the batch figure, ``orjson.loads`` is 0.33 and constructing the frozen ``Reading`` 0.45.
Validating with the compiled fastjsonschema validator alone would cost 2.6 (single) and 3.0
(per batched reading), which is why it is kept off the accepted path.

>>> decode_telemetry(b'{"asset_id": "pump-1", "ts": 1767225600000, "signals": {"t": 71.2}}')
[Reading(asset_id='pump-1', ts_ms=1767225600000, signals={'t': 71.2})]
>>> rejection = decode_telemetry(b'{"asset_id": "pump-1", "ts": 0, "signals": {"t": 1}}')
>>> rejection.reason.split(" not in ")[0], rejection.asset_id
('timestamp out of range: 1970-01-01T00:00:00.000Z', 'pump-1')
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

import schemas
from streams.codec import format_ts
from streams.records import Reading, Rejection

__all__ = ["DecodeLimits", "decode_telemetry"]

_SCHEMA = "telemetry.v1"


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Deployment limits of the edge decoder (not part of the schema).

    ``[min_ts_ms, max_ts_ms)`` is half-open; the defaults are 2000-01-01 and 2100-01-01 UTC.

    >>> DecodeLimits(max_bytes=65_536).max_bytes
    65536
    """

    max_bytes: int = 1_048_576
    min_ts_ms: int = 946_684_800_000
    max_ts_ms: int = 4_102_444_800_000
    max_signals: int = 256
    #: how far a reading may be stamped after its record reached Kafka (clock skew, not a
    #: feed from the future): further is refused by :func:`check_arrival`; None: no limit
    max_ahead_ms: int | None = 3_600_000


_DEFAULT_LIMITS = DecodeLimits()

# --- constants taken from the schema, so that the fast pass cannot drift from it ------------
_DEFS: dict[str, Any] = schemas.load(_SCHEMA)["$defs"]
_ASSET_ID_MIN: int = _DEFS["asset_id"]["minLength"]
_ASSET_ID_MAX: int = _DEFS["asset_id"]["maxLength"]
_ASSET_ID_RE = re.compile(_DEFS["asset_id"]["pattern"])
_TS_STR_MAX: int = _DEFS["ts"]["maxLength"]
_SIGNALS_MIN: int = _DEFS["signals"]["minProperties"]
_SIGNAL_NAME_MIN: int = _DEFS["signals"]["propertyNames"]["minLength"]
_SIGNAL_NAME_MAX: int = _DEFS["signals"]["propertyNames"]["maxLength"]
_READINGS_MIN: int = _DEFS["batch"]["properties"]["readings"]["minItems"]
_READINGS_MAX: int = _DEFS["batch"]["properties"]["readings"]["maxItems"]
_READING_KEYS = frozenset(_DEFS["reading"]["properties"])
_BATCH_KEYS = frozenset(_DEFS["batch"]["properties"])
_SINGLE_KEYS = frozenset(_DEFS["single"]["properties"])
if ({"asset_id", "ts", "signals"} != _READING_KEYS
        or {"schema_version", "asset_id", "readings", "ts", "signals"} != _BATCH_KEYS
        or {"schema_version", "asset_id", "ts", "signals", "readings"} != _SINGLE_KEYS):
    raise RuntimeError(f"{_SCHEMA} fields changed: update the fast pass in {__name__}")
#: the telemetry schema versions this decoder reads (a record's ``schema_version``)
SCHEMA_VERSIONS: tuple[int, ...] = (_DEFS["schema_version"]["const"],)
_ABSENT = object()
_PATTERN_TEXT = "match pattern " + _DEFS["asset_id"]["pattern"]
_PATTERN_WORDS = "have no control characters and no leading or trailing whitespace"


class _ReadingError(Exception):
    """A reading broke a rule; ``schema`` says whether the schema decides the wording."""

    def __init__(
        self, reason: str, *, schema: bool, asset_id: str | None = None, index: int = 0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.schema = schema
        self.asset_id = asset_id
        self.index = index


def _schema_error() -> _ReadingError:
    """A break of the schema: the schema validator will word the reason."""
    return _ReadingError("", schema=True)


_KNOWN_ASSET_IDS: set[str] = set()  # memo of ids that passed; a set lookup beats a call
_KNOWN_ASSET_IDS_MAX = 32_768


_KNOWN_SIGNAL_NAMES: set[str] = set()  # memo of signal names that passed
_KNOWN_SIGNAL_NAMES_MAX = 4_096
_FLOAT_ONLY = frozenset((float,))


def _check_signals(signals: dict[Any, Any]) -> bool:
    """Check every signal's name and value against the schema (raise if one breaks it);
    whether the values are all floats already (else ints and nulls are to convert).

    >>> _check_signals({"temp": 1.0}), _check_signals({"temp": 1, "vib": None})
    (True, False)
    """
    clean = True
    for name, value in signals.items():
        value_type = type(value)
        if value_type is not float:
            if value_type is int or value is None:
                clean = False
            else:
                raise _schema_error()
        if not _SIGNAL_NAME_MIN <= len(name) <= _SIGNAL_NAME_MAX:
            raise _schema_error()
    if len(_KNOWN_SIGNAL_NAMES) + len(signals) > _KNOWN_SIGNAL_NAMES_MAX:
        _KNOWN_SIGNAL_NAMES.clear()
    _KNOWN_SIGNAL_NAMES.update(signals)
    return clean


def _asset_id_ok(asset_id: str) -> bool:
    if asset_id in _KNOWN_ASSET_IDS:
        return True
    if not (
        _ASSET_ID_MIN <= len(asset_id) <= _ASSET_ID_MAX
        and _ASSET_ID_RE.search(asset_id) is not None
    ):
        return False
    if len(_KNOWN_ASSET_IDS) >= _KNOWN_ASSET_IDS_MAX:
        _KNOWN_ASSET_IDS.clear()
    _KNOWN_ASSET_IDS.add(asset_id)
    return True


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


@functools.lru_cache(maxsize=16_384)
def _parse_ts(text: str) -> int | str:
    """RFC 3339 text → epoch ms, or the reason it is not acceptable."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return f"timestamp not RFC 3339: {text!r}"
    # the match ends in Z/z, in ±hh:mm, or (no timezone) in digits of the time of day
    if text[-1] not in "Zz" and text[-6] not in "+-":
        return f"timestamp has no timezone: {text!r}"
    try:  # the shape is RFC 3339: let the C parser do the arithmetic
        return (datetime.fromisoformat(text) - _EPOCH) // _ONE_MS
    except (ValueError, OverflowError):
        pass  # lower-case t/z, or a field out of range: the long way, with the reason
    year, month, day, hour, minute, second, frac, _zulu, sign, off_h, off_m = m.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        return f"timestamp invalid: {text!r} ({exc})"
    h, mi, s = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or s > 59:
        return f"timestamp invalid: {text!r} (time of day out of range)"
    ms = (((days * 24 + h) * 60 + mi) * 60 + s) * 1000
    if frac:
        ms += int(frac[:3].ljust(3, "0"))
    if sign is not None:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            return f"timestamp invalid: {text!r} (offset out of range)"
        offset_ms = (oh * 60 + om) * 60_000
        ms = ms - offset_ms if sign == "+" else ms + offset_ms
    return ms


def parse_timestamp(text: str) -> int | str:
    """An RFC 3339 timestamp as epoch ms, or the reason it is not one (CLI options use it).

    >>> parse_timestamp("2026-01-01T00:00:00Z"), parse_timestamp("yesterday")
    (1767225600000, "timestamp not RFC 3339: 'yesterday'")
    """
    return _parse_ts(text)


def _show_ts(ts_ms: int) -> str:
    try:
        return format_ts(ts_ms)
    except ValueError:
        return f"{ts_ms} ms"


def _range_reason(ts_ms: int, limits: DecodeLimits) -> str:
    lo, hi = limits.min_ts_ms, limits.max_ts_ms
    reason = f"timestamp out of range: {_show_ts(ts_ms)} not in [{_show_ts(lo)}, {_show_ts(hi)})"
    if lo <= ts_ms * 1000 < hi:
        reason += "; epoch seconds? ts must be epoch milliseconds"
    elif lo <= ts_ms // 1000 < hi:
        reason += "; epoch microseconds? ts must be epoch milliseconds"
    return reason


def check_arrival(readings: list[Reading], raw: bytes, arrived_ms: int | None,
                  limits: DecodeLimits = _DEFAULT_LIMITS) -> Rejection | None:
    """Refuse a message stamped implausibly far after it reached Kafka (check 7).

    One reading at 2099 would carry its asset's event clock to 2099 and make every later
    point late; the broker's timestamp of the record says when it really arrived, so a
    reading more than :attr:`DecodeLimits.max_ahead_ms` after it is refused, whole message
    (like every other check). Unknown arrival (``None``) or no limit: nothing to check.

    >>> r = [Reading("pump-1", 4_070_908_800_000, {"t": 1.0})]  # 2099-01-01
    >>> reason = check_arrival(r, b"...", arrived_ms=1_796_284_800_000).reason
    >>> reason.split(" after ")[0]
    'timestamp ahead of arrival: 2099-01-01T00:00:00.000Z is more than 1 h'
    >>> check_arrival(r, b"...", arrived_ms=4_070_908_000_000) is None
    True
    """
    limit = limits.max_ahead_ms
    if arrived_ms is None or limit is None:
        return None
    for i, reading in enumerate(readings):
        if reading.ts_ms > arrived_ms + limit:
            where = f"readings[{i}]: " if len(readings) > 1 else ""
            return Rejection(
                f"{where}timestamp ahead of arrival: {_show_ts(reading.ts_ms)} is more than "
                f"{_span(limit)} after the record reached Kafka ({_show_ts(arrived_ms)})",
                raw, reading.asset_id)
    return None


def _span(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


_NON_FINITE_LITERAL = re.compile(r"-?(?:NaN|nan|Infinity|infinity|inf|Inf)\b")


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    where = f"at line {exc.lineno} column {exc.colno}"
    if exc.msg.startswith("number is infinity"):
        return f"non-finite number: overflows a double {where}"
    doc, pos = exc.doc, exc.pos
    if isinstance(doc, str) and 0 <= pos < len(doc):
        start = pos - 1 if pos > 0 and doc[pos - 1] == "-" else pos
        literal = _NON_FINITE_LITERAL.match(doc, start, start + 10)
        if literal is not None:
            return f"non-finite number: {literal.group()} {where}"
    return f"not JSON: {exc.msg} {where}"


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        text = bytes(key).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        return None
    return text if _asset_id_ok(text) else None


def _doc_asset_id(doc: Any) -> str | None:
    if type(doc) is dict:
        aid = doc.get("asset_id")
        if type(aid) is str and _asset_id_ok(aid):
            return aid
    return None


def _schema_reason(doc: Any, batch: bool) -> str | None:
    """The schema's wording of what is wrong with ``doc``, or None if the schema accepts it."""
    validate = schemas.validator(_SCHEMA, "batch" if batch else "single", use_formats=False)
    try:
        validate(doc)
    except schemas.ValidationError as exc:
        return "schema: " + exc.message.replace(_PATTERN_TEXT, _PATTERN_WORDS)
    return None


def _readings(
    items: list[Any], default_asset: str | None, limits: DecodeLimits
) -> list[Reading]:
    """The fast pass: check each reading against the schema and limits, and convert it."""
    lo, hi, max_signals = limits.min_ts_ms, limits.max_ts_ms, limits.max_signals
    out: list[Reading] = []
    append = out.append
    for index, item in enumerate(items):
        if type(item) is not dict:
            raise _schema_error()
        ts: Any = item.get("ts")
        signals: Any = item.get("signals")
        # fields the schema does not name are ignored (docs/schemas.md, "Evolution")
        asset_id: Any = item.get("asset_id", _ABSENT)
        if asset_id is _ABSENT:
            asset_id = default_asset
            if asset_id is None:
                raise _schema_error()
        elif type(asset_id) is not str or (
            asset_id not in _KNOWN_ASSET_IDS and not _asset_id_ok(asset_id)
        ):
            raise _schema_error()
        # --- timestamp
        ts_type = type(ts)
        ts_ms: int
        if ts_type is int:
            ts_ms = ts
        elif ts_type is str:
            if len(ts) > _TS_STR_MAX:
                raise _schema_error()
            parsed = _parse_ts(ts)
            if isinstance(parsed, str):
                raise _ReadingError(parsed, schema=False, asset_id=asset_id, index=index)
            ts_ms = parsed
        elif ts_type is float and ts.is_integer():  # the schema's "integer" admits 1.0
            ts_ms = int(ts)
        else:
            raise _schema_error()
        # --- signals
        if type(signals) is not dict:
            raise _schema_error()
        n_signals = len(signals)
        if n_signals < _SIGNALS_MIN:
            raise _schema_error()
        # the common case in two C-level checks: names seen before, every value a float
        clean = signals.keys() <= _KNOWN_SIGNAL_NAMES and _FLOAT_ONLY.issuperset(
            map(type, signals.values()))
        if not clean:
            clean = _check_signals(signals)
        if not lo <= ts_ms < hi:
            reason = _range_reason(ts_ms, limits)
            raise _ReadingError(reason, schema=False, asset_id=asset_id, index=index)
        if n_signals > max_signals:
            reason = f"too many signals: {n_signals} > {max_signals}"
            raise _ReadingError(reason, schema=False, asset_id=asset_id, index=index)
        if not clean:
            signals = {k: float(v) for k, v in signals.items() if v is not None}
        append(Reading(asset_id, ts_ms, signals))
    return out


def _decode(raw: bytes, key: bytes | None, limits: DecodeLimits) -> list[Reading] | Rejection:
    size = len(raw)
    if size > limits.max_bytes:
        return Rejection(f"oversize: {size} bytes > {limits.max_bytes}", raw, _key_text(key))
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(_json_reason(exc), raw, _key_text(key))
    batch = type(doc) is dict and "readings" in doc
    if type(doc) is dict and "schema_version" in doc:
        version = doc["schema_version"]
        if type(version) not in (int, float) or version not in SCHEMA_VERSIONS:
            return Rejection(f"schema: unsupported schema_version {str(version)[:20]}: this "
                             "deployment reads telemetry version(s) "
                             f"{', '.join(map(str, SCHEMA_VERSIONS))}", raw,
                             _doc_asset_id(doc) or _key_text(key))
    try:
        if not batch:
            return _readings([doc], None, limits)
        items = doc["readings"]
        has_default = "asset_id" in doc
        default_asset = doc.get("asset_id")
        if (
            "ts" in doc
            or "signals" in doc
            or type(items) is not list
            or not _READINGS_MIN <= len(items) <= _READINGS_MAX
            or (
                has_default
                and (type(default_asset) is not str or not _asset_id_ok(default_asset))
            )
        ):
            raise _schema_error()
        return _readings(items, default_asset, limits)
    except _ReadingError as bad:
        asset_id = bad.asset_id or _doc_asset_id(doc) or _key_text(key)
        schema_reason = _schema_reason(doc, batch)
        if schema_reason is not None:
            return Rejection(schema_reason, raw, asset_id)
        if bad.schema:  # the fast pass and the schema disagree: trust neither, reject
            return Rejection("schema: not a valid telemetry record", raw, asset_id)
        reason = f"readings[{bad.index}]: {bad.reason}" if batch else bad.reason
        return Rejection(reason, raw, asset_id)


def decode_telemetry(
    raw: bytes, key: bytes | None = None, limits: DecodeLimits = _DEFAULT_LIMITS
) -> list[Reading] | Rejection:
    """Decode one telemetry message (single reading or batch) into readings, or reject it.

    ``key`` is the Kafka message key; it does not have to match the records' ``asset_id``
    (see the module docstring). Never raises.

    >>> batch = b'''{"asset_id": "pump-1", "readings": [
    ...   {"ts": "2026-01-01T00:00:00Z", "signals": {"temp": 71.2, "vib": null}},
    ...   {"ts": 1767225900000, "signals": {"temp": 72}}]}'''
    >>> for reading in decode_telemetry(batch):
    ...     print(reading)
    Reading(asset_id='pump-1', ts_ms=1767225600000, signals={'temp': 71.2})
    Reading(asset_id='pump-1', ts_ms=1767225900000, signals={'temp': 72.0})
    >>> decode_telemetry(b'{"asset_id": "pump-1", "ts": 1767225600000}').reason
    "schema: data must contain ['signals'] properties"
    >>> decode_telemetry(b'{"asset_id": "pump-1", "ts": 1767225600000').reason
    'not JSON: unexpected end of data at line 1 column 43'
    """
    try:
        return _decode(raw, key, limits)
    except Exception as exc:  # a bug here must not stop the worker: reject, loudly worded
        reason = f"decoder error: {type(exc).__name__}: {exc}"[:500]
        try:
            original = bytes(raw)
        except Exception:
            original = b""
        return Rejection(reason, original, None)
