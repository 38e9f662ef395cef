"""Notification records: round trip, deterministic ids, schema conformance, readable texts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from streams.alerts import Alert, AlertConfig, AlertGrouperConfig
from streams.codec import encode_anomaly, loads
from streams.notification import (
    decode_notification,
    email_text,
    encode_notification,
    idempotency_key,
    notification_id,
    webhook_body,
)
from streams.records import Anomaly

T0 = 1_767_225_600_000
P = 60_000


def anomaly(point: int, asset: str = "pump-017", severity: float = 0.9) -> Anomaly:
    return Anomaly("line-3", asset, T0 + point * P, "pumps", 2, 7.5, severity, 70, 0.3,
                   {"vib": 0.8, "temp": 0.1})


def group_alerts() -> list[Alert]:
    """open, updated, resolved of one group, from the real grouper."""
    g = AlertGrouperConfig("line-3", P, AlertConfig("high-vib", correlation_points=3)).build(None)
    return g.add(anomaly(0)) + g.add(anomaly(2)) + g.advance(T0 + 6 * P)


def reference(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schemas.load(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_a_group_notifies_open_then_resolved_with_distinct_ids() -> None:
    opened, updated, resolved = group_alerts()
    assert (opened.state, opened.notify, updated.notify, resolved.state) == ("open", True, False, "resolved")
    assert opened.alert_id == resolved.alert_id
    assert notification_id(opened) != notification_id(resolved)
    with pytest.raises(ValueError, match="does not notify"):
        encode_notification(updated, ["ops"])


def test_a_republished_state_has_the_same_id_and_keys() -> None:
    first = group_alerts()[0]
    again = group_alerts()[0]  # a restarted worker re-derives the same alert
    a = decode_notification(encode_notification(first, ["ops", "mail"]))
    b = decode_notification(encode_notification(again, ["ops", "mail"]))
    assert a.notification_id == b.notification_id
    assert idempotency_key(a, "ops") == idempotency_key(b, "ops")
    assert idempotency_key(a, "ops") != idempotency_key(a, "mail")


def test_decode_gives_back_the_alert_with_its_anomalies() -> None:
    resolved = group_alerts()[2]
    n = decode_notification(encode_notification(resolved, ["ops"]))
    assert n.alert == resolved and n.key == resolved.alert_id
    assert [a.ts_ms for a in n.alert.anomalies] == [T0, T0 + 2 * P]


def test_the_record_validates_and_embeds_the_topic_forms() -> None:
    resolved = group_alerts()[2]
    record = loads(encode_notification(resolved, ["ops"]))
    reference("notification.v1").validate(record)
    reference("alert.v1").validate(record["alert"])
    for plain, a in zip(record["anomalies"], resolved.anomalies, strict=True):
        assert plain == loads(encode_anomaly(a))
        reference("anomaly.v1").validate(plain)


@pytest.mark.parametrize(("definition", "source"), [("alert", "alert.v1"), ("anomaly", "anomaly.v1")])
def test_embedded_definitions_match_their_schemas(definition: str, source: str) -> None:
    embedded = schemas.load("notification.v1")["$defs"][definition]
    original = schemas.load(source)
    for key in ("required", "properties", "additionalProperties", "type"):
        assert embedded[key] == original[key], key


@pytest.mark.parametrize("example", schemas.load("notification.v1")["examples"])
def test_examples_decode_and_re_encode_to_the_same_record(example: dict[str, Any]) -> None:
    from streams.codec import dumps

    n = decode_notification(dumps(example))
    assert loads(webhook_body(n)) == example


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{", "not JSON"), (b"[]", "must be object"),
     (b'{"notification_id": "x", "summary": "s", "alert": {}, "anomalies": [], "hooks": ["h"]}',
      "notification_id must match"),
     ],
)
def test_bad_records_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_notification(raw)


@pytest.mark.parametrize("hooks", [[], ["a", "a"], [""]])
def test_hook_lists_must_be_non_empty_and_distinct(hooks: list[str]) -> None:
    with pytest.raises(ValueError, match="distinct hooks"):
        encode_notification(group_alerts()[0], hooks)


def test_email_text_names_the_alert_and_lists_the_anomalies() -> None:
    n = decode_notification(encode_notification(group_alerts()[2], ["mail"]))
    subject, body = email_text(n)
    assert subject == "[assetwatch] RESOLVED high-vib on line-3: pump-017 (2 anomalies, max severity 0.90)"
    assert "2026-01-01T00:02:00.000Z  pump-017  severity 0.900" in body
    assert "top signals  vib, temp" in body and n.notification_id in body


severities = st.floats(min_value=0.7, max_value=1.0)


@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["p1", "p2", "p3"]), severities),
                min_size=1, max_size=30),
       st.integers(0, 4))
def test_every_notifying_alert_round_trips_and_validates(
    points: list[tuple[int, str, float]], x: int
) -> None:
    rules = AlertConfig("cfg", correlation_points=x, scope="inference")
    g = AlertGrouperConfig("line-3", P, rules).build(None)
    alerts = g.add_all(anomaly(p, asset, s) for p, asset, s in points) + g.advance(T0 + 100 * P)
    validator = reference("notification.v1")
    ids = set()
    for a in alerts:
        if not a.notify:
            continue
        raw = encode_notification(a, ["ops"])
        validator.validate(loads(raw))
        n = decode_notification(raw)
        assert n.alert == a and webhook_body(n) == raw
        ids.add(n.notification_id)
    assert len(ids) == sum(a.notify for a in alerts)  # one id per notifying state


def test_ids_depend_on_the_state() -> None:
    a = group_alerts()[0]
    assert notification_id(a) != notification_id(replace(a, anomaly_count=2))
    assert notification_id(a) == notification_id(replace(a, anomalies=()))
