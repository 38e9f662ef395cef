"""The notification record: one alert to deliver through hooks (``schemas/notification.v1.json``).

For every alert whose ``notify`` is true, the scoring side publishes one record on the internal
topic ``<prefix>.notifications`` (key = the alert id) made by :func:`encode_notification`: the
alert record (as on the alert topic), its inline anomalies (as on the anomaly topic) and the
names of the hooks to call. The delivery agent decodes it (:func:`decode_notification`) and
calls each hook; a webhook's body *is* this record.

Ids are deterministic, so a record re-published after a crash is recognised:

* :func:`notification_id` hashes what identifies one alert state (alert id, state, range,
  count): the same state gives the same id; the ``open`` and ``resolved`` notifications of a
  group have different ones;
* :func:`idempotency_key` adds the hook: the ``Idempotency-Key`` a receiver deduplicates on.

>>> from streams.alerts import Alert
>>> from streams.records import Anomaly
>>> an = Anomaly("line-3", "pump-017", 1767225600000, "pumps", 2, 7.4, 0.93, 70, 0.3, {"vib": 0.9})
>>> alert = Alert("4bd3f99bef3010eb", "high-vib", "line-3", ("pump-017",), an.ts_ms, an.ts_ms, 1,
...               0.93, ("vib",), "open", True, (an,))
>>> n = decode_notification(encode_notification(alert, ["ops-webhook"]))
>>> n.summary
'OPEN high-vib on line-3: pump-017 (severity 0.93)'
>>> n.alert == alert, n.hooks, len(idempotency_key(n, "ops-webhook"))
(True, ('ops-webhook',), 32)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import schemas
from streams.alert_codec import alert_record
from streams.alerts import Alert
from streams.codec import dumps, encode_anomaly, format_ts, loads
from streams.records import Anomaly

__all__ = [
    "Notification",
    "decode_notification",
    "email_text",
    "encode_notification",
    "idempotency_key",
    "notification_id",
    "summary",
]

SCHEMA: Final = "notification.v1"
MAX_SUMMARY_ASSETS: Final = 3


@dataclass(frozen=True, slots=True)
class Notification:
    """A decoded notification: the alert (``notify`` true, anomalies inline) and its hooks."""

    notification_id: str
    alert: Alert
    hooks: tuple[str, ...]
    summary: str

    @property
    def key(self) -> str:
        """The Kafka key of the record: the alert id."""
        return self.alert.alert_id


def notification_id(alert: Alert) -> str:
    """A short sha256 of one alert state: equal for a re-publication, distinct per state.

    >>> from streams.alerts import Alert
    >>> a = Alert("g1", "cfg", "inf", ("p",), 0, 0, 1, 0.9, (), "open", True)
    >>> b = Alert("g1", "cfg", "inf", ("p",), 0, 5_000, 3, 0.9, (), "resolved", True)
    >>> notification_id(a) == notification_id(a), notification_id(a) != notification_id(b)
    (True, True)
    """
    identity = dumps([alert.inference_id, alert.alert_config, alert.alert_id, alert.state,
                      alert.first_ts_ms, alert.last_ts_ms, alert.anomaly_count])
    return hashlib.sha256(identity).hexdigest()[:32]


def idempotency_key(notification: Notification, hook_name: str) -> str:
    """The ``Idempotency-Key`` of one notification delivered through one hook (32 hex digits).

    >>> from streams.alerts import Alert
    >>> n = Notification("abc", Alert("g", "c", "i", ("p",), 0, 0, 1, 0.9, (), "open", True), ("h",), "")
    >>> idempotency_key(n, "h") == idempotency_key(n, "h") != idempotency_key(n, "other")
    True
    """
    return hashlib.sha256(f"{notification.notification_id}/{hook_name}".encode()).hexdigest()[:32]


def _assets_text(assets: Sequence[str]) -> str:
    shown = ", ".join(assets[:MAX_SUMMARY_ASSETS])
    more = len(assets) - MAX_SUMMARY_ASSETS
    return shown + (f" (+{more} more)" if more > 0 else "")


def summary(alert: Alert) -> str:
    """One readable line: state, config, inference, assets, severity (and count when > 1).

    >>> from streams.alerts import Alert
    >>> summary(Alert("g", "high-vib", "line-3", ("p1", "p2", "p3", "p4"), 0, 9, 6, 0.971, (),
    ...               "resolved", True))
    'RESOLVED high-vib on line-3: p1, p2, p3 (+1 more) (6 anomalies, max severity 0.97)'
    """
    if alert.anomaly_count == 1:
        what = f"severity {alert.max_severity:.2f}"
    else:
        what = f"{alert.anomaly_count} anomalies, max severity {alert.max_severity:.2f}"
    return (f"{alert.state.upper()} {alert.alert_config} on {alert.inference_id}: "
            f"{_assets_text(alert.assets)} ({what})")


def _anomaly_plain(a: Anomaly) -> dict[str, Any]:
    plain: dict[str, Any] = loads(encode_anomaly(a))  # the anomaly topic's own form
    return plain


def encode_notification(alert: Alert, hooks: Sequence[str]) -> bytes:
    """The notification record's bytes (key: ``alert.alert_id``).

    Raises ``ValueError`` for an alert that does not notify, no hooks, or repeated hook names.

    >>> from streams.alerts import Alert
    >>> loads(encode_notification(Alert("g", "c", "i", ("p",), 0, 0, 1, 0.5, (), "single", True),
    ...                           ["h"]))["hooks"]
    ['h']
    """
    if not alert.notify:
        raise ValueError(f"alert {alert.alert_id} ({alert.state}) does not notify")
    names = list(hooks)
    if not names or len(set(names)) != len(names) or not all(isinstance(h, str) and h for h in names):
        raise ValueError(f"a notification names one or more distinct hooks, got {names!r}")
    return dumps({
        "notification_id": notification_id(alert),
        "summary": summary(alert),
        "alert": alert_record(alert),
        "anomalies": [_anomaly_plain(a) for a in alert.anomalies],
        "hooks": names,
    })


def _anomaly_from_plain(d: Mapping[str, Any]) -> Anomaly:
    return Anomaly(
        inference_id=d["inference_id"], asset_id=d["asset_id"], ts_ms=d["ts"],
        model_id=d["model_id"], model_version=d["model_version"], score=float(d["score"]),
        severity=float(d["severity"]), sensitivity=d["sensitivity"], threshold=float(d["threshold"]),
        contributions={k: float(v) for k, v in d["contributions"].items()},
        filled=d["filled"], replay_id=d["replay_id"],
    )


def decode_notification(raw: bytes) -> Notification:
    """A notification from its bytes; ``ValueError`` with a readable reason when it is not one.

    >>> decode_notification(b'{"notification_id": "x"}')
    Traceback (most recent call last):
    ...
    ValueError: not a notification record: data must contain ['alert', 'anomalies', 'hooks', \
'summary'] properties
    """
    try:
        doc = loads(raw)
    except ValueError as exc:
        raise ValueError(f"not a notification record: not JSON: {exc}") from None
    try:
        schemas.validator(SCHEMA)(doc)
    except schemas.ValidationError as exc:
        raise ValueError(f"not a notification record: {exc.message}") from None
    a = doc["alert"]
    alert = Alert(
        alert_id=a["alert_id"], alert_config=a["alert_config"], inference_id=a["inference_id"],
        assets=tuple(a["assets"]), first_ts_ms=a["first_ts"], last_ts_ms=a["last_ts"],
        anomaly_count=a["anomaly_count"], max_severity=float(a["max_severity"]),
        top_signals=tuple(a["top_signals"]), state=a["state"], notify=True,
        anomalies=tuple(_anomaly_from_plain(x) for x in doc["anomalies"]),
    )
    return Notification(doc["notification_id"], alert, tuple(doc["hooks"]), doc["summary"])


def webhook_body(notification: Notification) -> bytes:
    """The body a webhook receives: the notification record itself (re-encoded, same bytes).

    >>> from streams.alerts import Alert
    >>> raw = encode_notification(Alert("g", "c", "i", ("p",), 0, 0, 1, 0.5, (), "single", True), ["h"])
    >>> webhook_body(decode_notification(raw)) == raw
    True
    """
    return encode_notification(notification.alert, notification.hooks)


def email_text(notification: Notification) -> tuple[str, str]:
    """The subject and plain-text body of the e-mail for a notification.

    >>> from streams.alerts import Alert
    >>> from streams.records import Anomaly
    >>> an = Anomaly("line-3", "pump-017", 1767225600000, "pumps", 2, 7.4, 0.93, 70, 0.3, {"vib": 0.9})
    >>> n = Notification("n1", Alert("g1", "high-vib", "line-3", ("pump-017",), an.ts_ms, an.ts_ms, 1,
    ...                  0.93, ("vib",), "open", True, (an,)), ("mail",), "")
    >>> subject, body = email_text(n)
    >>> subject
    '[assetwatch] OPEN high-vib on line-3: pump-017 (severity 0.93)'
    >>> print(body.splitlines()[-1])
      2026-01-01T00:00:00.000Z  pump-017  severity 0.930  score 7.4  vib 0.9
    """
    a = notification.alert
    line = summary(a)
    lines = [
        line, "",
        f"alert        {a.alert_id} ({a.state})",
        f"inference    {a.inference_id}",
        f"alert config {a.alert_config}",
        f"assets       {', '.join(a.assets)}",
        f"first        {format_ts(a.first_ts_ms)}",
        f"last         {format_ts(a.last_ts_ms)}",
        f"anomalies    {a.anomaly_count} (max severity {a.max_severity:.3f})",
        f"top signals  {', '.join(a.top_signals) or '-'}",
        f"notification {notification.notification_id}",
    ]
    if a.anomalies:
        lines += ["", f"Anomalies (the latest {len(a.anomalies)} of {a.anomaly_count}):"]
        for x in a.anomalies:
            signals = ", ".join(f"{k} {v:.3g}" for k, v in sorted(x.contributions.items(),
                                                                   key=lambda kv: -kv[1]))
            filled = " (filled)" if x.filled else ""
            lines.append(f"  {format_ts(x.ts_ms)}  {x.asset_id}  severity {x.severity:.3f}  "
                         f"score {x.score:.3g}  {signals}{filled}".rstrip())
    return f"[assetwatch] {line}", "\n".join(lines)
