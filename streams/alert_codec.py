"""The alert record on the alert topic (``schemas/alert.v1.json``), from a core :class:`Alert`.

Only the schema's fields are written: ``notify`` and the inline ``anomalies`` are for the hooks,
not the topic. The record's Kafka key is ``alert.key`` (the alert id, stable over the group's
life, so a compacted topic keeps each group's latest state).

>>> from streams.alerts import Alert
>>> a = Alert("4bd3f99bef3010eb", "high-vib", "line-3", ("pump-1",), 0, 900_000, 2, 0.9,
...           ("vib",), "updated", notify=False)
>>> encode_alert(a)[:60]
b'{"alert_id":"4bd3f99bef3010eb","alert_config":"high-vib","in'
"""

from __future__ import annotations

from typing import Any

from streams.alerts import Alert
from streams.codec import dumps

__all__ = ["alert_record", "encode_alert"]


def alert_record(alert: Alert) -> dict[str, Any]:
    """The alert as the schema's plain record, fields in schema order (hooks embed it too).

    >>> from streams.alerts import Alert
    >>> r = alert_record(Alert("id1", "cfg", "inf", ("p1", "p2"), 0, 5_000, 3, 0.75, (), "resolved", True))
    >>> r["assets"], r["first_ts"], r["last_ts"], r["state"], "notify" in r
    (['p1', 'p2'], 0, 5000, 'resolved', False)
    """
    return {
        "alert_id": alert.alert_id,
        "alert_config": alert.alert_config,
        "inference_id": alert.inference_id,
        "assets": list(alert.assets),
        "first_ts": alert.first_ts_ms,
        "last_ts": alert.last_ts_ms,
        "anomaly_count": alert.anomaly_count,
        "max_severity": float(alert.max_severity),
        "top_signals": list(alert.top_signals),
        "state": alert.state,
    }


def encode_alert(alert: Alert) -> bytes:
    """The alert record's bytes, through the one codec (a non-finite severity raises ``ValueError``).

    >>> from streams.codec import loads
    >>> from streams.alerts import Alert
    >>> loads(encode_alert(Alert("id1", "cfg", "inf", ("p1",), 7, 7, 1, 0.5, ("t",), "single", True)))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'alert_id': 'id1', 'alert_config': 'cfg', 'inference_id': 'inf', 'assets': ['p1'],
     'first_ts': 7, 'last_ts': 7, 'anomaly_count': 1, 'max_severity': 0.5,
     'top_signals': ['t'], 'state': 'single'}
    """
    return dumps(alert_record(alert))
