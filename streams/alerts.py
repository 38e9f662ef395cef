"""Alert grouping (SPEC §7; docs/alerts.md): anomalies → correlated groups → alert records.

Time is counted in **data points**, the slots of the inference's data interval Δ: the gap
between two anomalies is ``(slot_of(ts2) − slot_of(ts1)) / Δ`` (``(ts2 − ts1) / Δ`` for
slot-aligned timestamps). With correlation window ``x``:

* a group **opens** at its first anomaly — an ``open`` alert that notifies at once;
* a later anomaly at most ``x`` points after the group's **last** anomaly joins it (groups
  chain) — an ``updated`` alert that does not notify, published only when the group changed
  enough since its last record (its count doubled, an asset joined, its max severity entered a
  higher tenth, or it is announced); otherwise folded into the group's next record;
* the group **resolves** once ``x + 1`` points after its last anomaly have been scored with
  no anomaly — :meth:`AlertGrouper.advance` with the watermark, or a later anomaly too far to
  join — a ``resolved`` alert that notifies. ``x = 0`` correlates nothing: each anomaly has
  its own group, resolved when the next point is scored.

In ``each`` mode every anomaly is one ``single`` alert that notifies. Replays never alert.

SPEC §7 with 5-minute data and ``x = 5``: anomalies at points 0 and 3 are one group, which
resolves once point 9 is scored (6 points after its last anomaly at point 3, none of them
anomalous):

>>> from streams.records import Anomaly, anomaly_from_plain, anomaly_to_plain
>>> P = 300_000                                             # Δ = 5 min
>>> cfg = AlertGrouperConfig("line-3", P, AlertConfig("high-vib", correlation_points=5))
>>> g = cfg.build(None)
>>> def anomaly(point: int) -> Anomaly:
...     return Anomaly("line-3", "pump-1", point * P, "m", 1, 9.0, 0.9, 70, 0.3, {"vib": 1.0})
>>> [(a.state, a.notify, a.anomaly_count) for a in g.add(anomaly(0)) + g.add(anomaly(3))]
[('open', True, 1), ('updated', False, 2)]
>>> g.advance(8 * P)
[]
>>> [(a.state, a.notify, a.last_ts_ms // P) for a in g.advance(9 * P)]
[('resolved', True, 3)]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, TypeGuard, get_args

from streams.calibration import DEFAULT_SENSITIVITY, is_anomalous
from streams.codec import dumps
from streams.records import Anomaly, anomaly_from_plain, anomaly_to_plain
from streams.watermark import slot_of

AlertMode = Literal["group", "each"]
AlertScope = Literal["asset", "inference"]
AlertState = Literal["open", "updated", "resolved", "single"]

ALERT_MODES: Final = get_args(AlertMode)
ALERT_SCOPES: Final = get_args(AlertScope)
#: The scope key of an inference-scope group (an asset's id is the key in asset scope).
INFERENCE_SCOPE_KEY: Final = "*"
#: How many signals an alert names, most contributing first.
TOP_SIGNALS: Final = 3
#: How many of a group's anomalies (the latest) an alert carries inline, for hooks.
DEFAULT_MAX_INLINE_ANOMALIES: Final = 100
MAX_NAME_CHARS: Final = 256

# --------------------------------------------------------------------------- the arithmetic


def gap_points(earlier_ts_ms: int, later_ts_ms: int, interval_ms: int) -> int:
    """How many data points ``later`` is after ``earlier``: the difference of their slots / Δ.

    >>> gap_points(0, 900_000, 300_000), gap_points(0, 899_999, 300_000)
    (3, 2)
    """
    return (slot_of(later_ts_ms, interval_ms) - slot_of(earlier_ts_ms, interval_ms)) // interval_ms


def correlates(last_ts_ms: int, ts_ms: int, interval_ms: int, correlation_points: int) -> bool:
    """Whether an anomaly at ``ts_ms`` joins a group whose last anomaly is at ``last_ts_ms``.

    >>> P = 300_000
    >>> correlates(0, 3 * P, P, 5), correlates(0, 3 * P, P, 2), correlates(0, 6 * P, P, 5)
    (True, False, False)
    >>> correlates(0, 1 * P, P, 0)                              # x = 0 correlates nothing
    False
    """
    return gap_points(last_ts_ms, ts_ms, interval_ms) <= correlation_points


def resolves_at_ms(last_ts_ms: int, interval_ms: int, correlation_points: int) -> int:
    """The watermark at which a group whose last anomaly is at ``last_ts_ms`` resolves.

    That is the slot ``x + 1`` points after the last anomaly: once it is scored with no
    anomaly, nothing can join the group any more.

    >>> resolves_at_ms(0, 300_000, 5) // 300_000, resolves_at_ms(0, 300_000, 0) // 300_000
    (6, 1)
    """
    return slot_of(last_ts_ms, interval_ms) + (correlation_points + 1) * interval_ms


def alert_id(inference_id: str, config_name: str, scope_key: str, first_ms: int) -> str:
    """The stable id of an alert: a short sha256 of what identifies it.

    A group's id hashes its scope key (asset id, or ``"*"`` in inference scope) and the slot
    of its first anomaly; a ``single`` alert's hashes its asset id and its anomaly's timestamp.
    A restarted worker, or a re-processed anomaly, gives the same id.

    >>> alert_id("line-3", "high-vib", "pump-1", 0)
    '4bd3f99bef3010eb'
    >>> alert_id("line-3", "high-vib", "pump-1", 0) != alert_id("line-3", "high-vib", "*", 0)
    True
    """
    identity = dumps([inference_id, config_name, scope_key, first_ms])
    return hashlib.sha256(identity).hexdigest()[:16]


def severity_tenth(severity: float) -> int:
    """Which tenth of [0, 1] a severity is in (1.0 in the tenth above 0.9).

    >>> severity_tenth(0.0), severity_tenth(0.79), severity_tenth(0.8), severity_tenth(1.0)
    (0, 7, 8, 10)
    """
    return int(severity * 10)


def top_signals(contributions: Mapping[str, float], n: int = TOP_SIGNALS) -> tuple[str, ...]:
    """The ``n`` signals with the largest (summed) contribution, largest first; ties by name.

    Signals that contributed nothing (and unnamed ones) are not named.

    >>> top_signals({"temp": 0.5, "vib": 1.5, "flow": 0.5, "rpm": 0.25, "amp": 0.0})
    ('vib', 'flow', 'temp')
    """
    ranked = sorted((-v, k) for k, v in contributions.items() if v > 0 and k)
    return tuple(k for _, k in ranked[:n])


# --------------------------------------------------------------------------- configuration


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(values: Mapping[str, Any]) -> list[str]:
    """Readable reasons why these alert-config values are invalid (empty when they are fine)."""
    problems: list[str] = []
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("name must be a non-empty string")
    elif name != name.strip() or len(name) > MAX_NAME_CHARS:
        problems.append(f"name must have no surrounding spaces and at most {MAX_NAME_CHARS} characters")
    s = values.get("sensitivity")
    if not _is_int(s) or not 1 <= s <= 100:
        problems.append(f"sensitivity must be an integer from 1 to 100, got {s!r}")
    x = values.get("correlation_points")
    if not _is_int(x) or x < 0:
        problems.append(f"correlation window must be a whole number of data points ≥ 0, got {x!r}")
    if values.get("mode") not in ALERT_MODES:
        problems.append(f"mode must be one of {', '.join(ALERT_MODES)}, got {values.get('mode')!r}")
    if values.get("scope") not in ALERT_SCOPES:
        problems.append(f"scope must be one of {', '.join(ALERT_SCOPES)}, got {values.get('scope')!r}")
    m = values.get("min_severity")
    if m is not None and (
        not isinstance(m, int | float) or isinstance(m, bool) or not 0.0 <= m <= 1.0
    ):
        problems.append(f"min severity must be a number from 0 to 1 (or absent), got {m!r}")
    n = values.get("snooze_points")
    if n is not None and (not _is_int(n) or n < 1):
        problems.append(f"snooze must be a whole number of data points ≥ 1 (or absent), got {n!r}")
    return problems


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """One alert configuration of an inference (SPEC §7).

    * ``sensitivity`` — anomalies with ``severity < 1 − sensitivity/100`` are ignored by this
      config (it can only be stricter than the inference's own sensitivity);
    * ``correlation_points`` — the correlation window ``x``, in data points (no default);
    * ``mode`` — ``group``: one alert per correlated group; ``each``: a ``single`` alert per
      anomaly;
    * ``scope`` — ``asset``: groups per asset; ``inference``: across all the inference's assets;
    * ``min_severity`` — a group notifies only once its max severity reaches it (a single
      alert only if its anomaly's severity does); its records are published all the same;
    * ``snooze_points`` — after a notification of a new group (or single alert), no new one for
      this many points in the same scope; resolutions still notify.

    Invalid values raise ``ValueError`` with every reason:

    >>> AlertConfig("high-vib", correlation_points=5).sensitivity
    70
    >>> AlertConfig("", correlation_points=-1, mode="all")
    Traceback (most recent call last):
    ...
    ValueError: invalid alert config: name must be a non-empty string; correlation window must \
be a whole number of data points ≥ 0, got -1; mode must be one of group, each, got 'all'
    """

    name: str
    correlation_points: int
    sensitivity: int = DEFAULT_SENSITIVITY
    mode: AlertMode = "group"
    scope: AlertScope = "asset"
    min_severity: float | None = None
    snooze_points: int | None = None

    def __post_init__(self) -> None:
        problems = _check(self.to_dict())
        if problems:
            raise ValueError("invalid alert config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` reads it back.

        >>> AlertConfig.from_dict(AlertConfig("a", 2, scope="inference").to_dict()).scope
        'inference'
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertConfig:
        """Read a config from plain data (a control command's parameters), defaults filled in.

        Raises ``ValueError`` listing every problem, unknown and missing fields included.

        >>> AlertConfig.from_dict({"name": "a", "correlation_points": 0, "mode": "each"}).mode
        'each'
        >>> AlertConfig.from_dict({"name": "a", "window": 3})
        Traceback (most recent call last):
        ...
        ValueError: invalid alert config: unknown field 'window'; correlation_points is required
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"invalid alert config: expected an object, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        problems = [f"unknown field {k!r}" for k in data if k not in known]
        problems += [f"{k} is required" for k in ("name", "correlation_points") if k not in data]
        if not problems:
            defaults = {"sensitivity": DEFAULT_SENSITIVITY, "mode": "group", "scope": "asset",
                        "min_severity": None, "snooze_points": None}
            problems = _check({**defaults, **data})
        if problems:
            raise ValueError("invalid alert config: " + "; ".join(problems))
        values = dict(data)
        if values.get("min_severity") is not None:
            values["min_severity"] = float(values["min_severity"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class AlertGrouperConfig:
    """One alert config applied to one inference, whose data interval Δ counts the points.

    >>> cfg = AlertGrouperConfig("line-3", 300_000, AlertConfig("high-vib", 5))
    >>> cfg.build(None).snapshot()["open"]
    {}
    """

    inference_id: str
    interval_ms: int
    alert: AlertConfig
    max_inline_anomalies: int = DEFAULT_MAX_INLINE_ANOMALIES

    def __post_init__(self) -> None:
        if not self.inference_id:
            raise ValueError("inference id must be non-empty")
        if self.interval_ms <= 0:
            raise ValueError(f"data interval must be > 0 ms, got {self.interval_ms}")
        if self.max_inline_anomalies < 1:
            raise ValueError(f"max inline anomalies must be ≥ 1, got {self.max_inline_anomalies}")

    def build(self, resume_state: Mapping[str, Any] | None) -> AlertGrouper:
        """The grouping logic, fresh (``None``) or from an :meth:`AlertGrouper.snapshot`."""
        return AlertGrouper(self, resume_state)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert record (``schemas/alert.v1.json``, via :func:`streams.alert_codec.encode_alert`).

    ``notify`` says whether hooks are to be called for this record (it is not part of the
    published record); ``anomalies`` are the group's latest anomalies (at most
    ``max_inline_anomalies`` of them, oldest first), for hooks to carry inline. The Kafka key
    is ``alert_id``, the same in every record of a group.
    """

    alert_id: str
    alert_config: str
    inference_id: str
    assets: tuple[str, ...]
    first_ts_ms: int
    last_ts_ms: int
    anomaly_count: int
    max_severity: float
    top_signals: tuple[str, ...]
    state: AlertState
    notify: bool
    anomalies: tuple[Anomaly, ...] = ()

    @property
    def key(self) -> str:
        return self.alert_id


class _Group:
    """An open group (mutable, internal); :meth:`to_plain` for snapshots."""

    __slots__ = ("alert_id", "announced", "anomalies", "assets", "contributions", "count",
                 "first_slot_ms", "first_ts_ms", "last_ts_ms", "max_severity", "shown")

    def __init__(self, alert_id: str, first_slot_ms: int, first_ts_ms: int) -> None:
        self.alert_id = alert_id
        self.first_slot_ms = first_slot_ms
        self.first_ts_ms = first_ts_ms
        self.last_ts_ms = first_ts_ms
        self.assets: dict[str, None] = {}  # an ordered set: by first anomaly
        self.count = 0
        self.max_severity = 0.0
        self.contributions: dict[str, float] = {}
        self.anomalies: list[Anomaly] = []
        self.announced = False
        #: (anomaly count, assets, severity tenth) of the last record published for the group
        self.shown = (0, 0, 0)

    def mark_shown(self) -> None:
        self.shown = (self.count, len(self.assets), severity_tenth(self.max_severity))

    def worth_an_update(self) -> bool:
        """Whether the group changed enough since its last record to publish an ``updated``
        one (docs/alerts.md, "Updates are folded")."""
        count, assets, tenth = self.shown
        return (self.count >= 2 * count or len(self.assets) > assets
                or severity_tenth(self.max_severity) > tenth)

    def join(self, a: Anomaly, max_inline: int) -> None:
        self.first_ts_ms = min(self.first_ts_ms, a.ts_ms)
        self.last_ts_ms = max(self.last_ts_ms, a.ts_ms)
        self.assets.setdefault(a.asset_id)
        self.count += 1
        self.max_severity = max(self.max_severity, float(a.severity))
        for signal, c in a.contributions.items():
            self.contributions[signal] = self.contributions.get(signal, 0.0) + float(c)
        self.anomalies.append(a)
        del self.anomalies[:-max_inline]

    def to_plain(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id, "first_slot_ms": self.first_slot_ms,
            "first_ts_ms": self.first_ts_ms, "last_ts_ms": self.last_ts_ms,
            "assets": list(self.assets), "count": self.count, "max_severity": self.max_severity,
            "contributions": dict(self.contributions), "announced": self.announced,
            "anomalies": [anomaly_to_plain(a) for a in self.anomalies],
            "shown": list(self.shown),
        }

    @classmethod
    def from_plain(cls, d: Mapping[str, Any]) -> _Group:
        g = cls(str(d["alert_id"]), int(d["first_slot_ms"]), int(d["first_ts_ms"]))
        g.last_ts_ms = int(d["last_ts_ms"])
        g.assets = dict.fromkeys(str(a) for a in d["assets"])
        g.count = int(d["count"])
        g.max_severity = float(d["max_severity"])
        g.contributions = {str(k): float(v) for k, v in d["contributions"].items()}
        g.announced = bool(d["announced"])
        g.anomalies = [anomaly_from_plain(a) for a in d["anomalies"]]
        if "shown" in d:
            count, assets, tenth = (int(v) for v in d["shown"])
            g.shown = (count, assets, tenth)
        else:  # a snapshot from before updates were folded: every update was published
            g.mark_shown()
        return g


# --------------------------------------------------------------------------- the logic


class AlertGrouper:
    """Groups one inference's anomalies under one alert config; :meth:`snapshot` is plain data.

    * :meth:`add` takes an anomaly as it is published and returns the alert records it causes;
    * :meth:`advance` takes the watermark (every slot at or before it has been scored) and
      resolves the groups that nothing can join any more.

    Feed the anomalies of a batch in timestamp order (:meth:`add_all` sorts them), then
    advance to the watermark the batch was scored up to. An anomaly that changes nothing —
    a replay's, one below the config's sensitivity, a re-delivery, a stale one — returns
    ``[]`` (docs/alerts.md, "Ignored anomalies").
    """

    __slots__ = ("_closed_upto", "_groups", "_last_ts", "_snoozed_from", "config")

    def __init__(self, config: AlertGrouperConfig, resume_state: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self._last_ts: dict[str, int] = {}          # asset → last anomaly taken (idempotence)
        self._groups: dict[str, _Group] = {}        # scope key → its open group
        self._closed_upto: dict[str, int] = {}      # scope key → last slot of its last resolved group
        self._snoozed_from: dict[str, int] = {}     # scope key → slot of its last announcement
        if resume_state is not None:
            self._last_ts = {str(k): int(v) for k, v in resume_state["last_ts_ms"].items()}
            self._groups = {str(k): _Group.from_plain(v) for k, v in resume_state["open"].items()}
            self._closed_upto = {str(k): int(v) for k, v in resume_state["closed_upto_ms"].items()}
            self._snoozed_from = {str(k): int(v) for k, v in resume_state["snoozed_from_ms"].items()}

    # ------------------------------------------------------------------ reading the state

    def next_resolution_ms(self) -> int | None:
        """The smallest watermark at which :meth:`advance` resolves a group, if any is open.

        >>> from streams.records import Anomaly
        >>> g = AlertGrouperConfig("i", 1_000, AlertConfig("a", 2)).build(None)
        >>> _ = g.add(Anomaly("i", "p", 4_000, "m", 1, 9.0, 0.9, 70, 0.3))
        >>> g.next_resolution_ms()
        7000
        """
        x, step = self.config.alert.correlation_points, self.config.interval_ms
        return min((resolves_at_ms(g.last_ts_ms, step, x) for g in self._groups.values()), default=None)

    # ------------------------------------------------------------------ the logic

    def add(self, anomaly: Anomaly) -> list[Alert]:
        """The alert records one anomaly causes (``[]`` when it changes nothing).

        Raises ``ValueError`` for an anomaly of another inference (a wiring error).

        >>> from streams.records import Anomaly
        >>> g = AlertGrouperConfig("i", 1_000, AlertConfig("a", 0)).build(None)
        >>> a = Anomaly("i", "p", 0, "m", 1, 9.0, 0.9, 70, 0.3, {"vib": 1.0})
        >>> [(x.state, x.notify) for x in g.add(a)], g.add(a)       # re-delivered: nothing
        ([('open', True)], [])
        >>> [(x.state, x.first_ts_ms) for x in g.add(Anomaly("i", "p", 1_000, "m", 1, 9.0, 0.9, 70, 0.3))]
        [('resolved', 0), ('open', 1000)]
        """
        cfg = self.config
        rules = cfg.alert
        if anomaly.inference_id != cfg.inference_id:
            raise ValueError(
                f"anomaly of inference {anomaly.inference_id!r} fed to the alerts of {cfg.inference_id!r}"
            )
        if anomaly.replay_id is not None or not is_anomalous(anomaly.severity, rules.sensitivity):
            return []
        asset, ts = anomaly.asset_id, anomaly.ts_ms
        last = self._last_ts.get(asset)
        if last is not None and ts <= last:
            return []  # re-delivered (an asset's anomalies come in timestamp order)
        scope = asset if rules.scope == "asset" else INFERENCE_SCOPE_KEY
        slot = slot_of(ts, cfg.interval_ms)
        if rules.mode == "each":
            self._last_ts[asset] = ts
            notify = self._announce(scope, float(anomaly.severity), slot)
            return [Alert(
                alert_id(cfg.inference_id, rules.name, asset, ts), rules.name, cfg.inference_id,
                (asset,), ts, ts, 1, float(anomaly.severity), top_signals(anomaly.contributions),
                "single", notify, (anomaly,),
            )]
        closed = self._closed_upto.get(scope)
        if closed is not None and slot <= closed:
            return []  # stale: at or before a group already resolved
        out: list[Alert] = []
        group = self._groups.get(scope)
        if group is not None:
            if slot < group.first_slot_ms:
                return []  # stale: before the open group's first anomaly
            if correlates(group.last_ts_ms, ts, cfg.interval_ms, rules.correlation_points):
                self._last_ts[asset] = ts
                group.join(anomaly, cfg.max_inline_anomalies)
                notify = not group.announced and self._announce(scope, group.max_severity, slot)
                group.announced = group.announced or notify
                if not notify and not group.worth_an_update():
                    return []  # folded: the group's next record carries it
                return [self._record(group, "updated", notify)]
            out.append(self._resolve(scope))
        self._last_ts[asset] = ts
        group = _Group(alert_id(cfg.inference_id, rules.name, scope, slot), slot, ts)
        group.join(anomaly, cfg.max_inline_anomalies)
        group.announced = self._announce(scope, group.max_severity, slot)
        self._groups[scope] = group
        out.append(self._record(group, "open", group.announced))
        return out

    def add_all(self, anomalies: Iterable[Anomaly]) -> list[Alert]:
        """:meth:`add` each anomaly, in timestamp order (then asset id); the records in order."""
        out: list[Alert] = []
        for a in sorted(anomalies, key=lambda a: (a.ts_ms, a.asset_id)):
            out.extend(self.add(a))
        return out

    def advance(self, watermark_ms: int) -> list[Alert]:
        """Resolve every group whose last anomaly is more than ``x`` points before the watermark.

        ``watermark_ms`` is the last slot scored (streams.watermark's watermark; in a clock's
        terms ``last_due_slot_ms(now_ms, Δ, D)``), not the clock time. Resolutions come out in
        the order they happened (then by alert id); an earlier watermark resolves nothing new.

        >>> from streams.records import Anomaly
        >>> g = AlertGrouperConfig("i", 1_000, AlertConfig("a", 0)).build(None)
        >>> _ = g.add(Anomaly("i", "p", 5_000, "m", 1, 9.0, 0.9, 70, 0.3))
        >>> g.advance(5_999), [a.state for a in g.advance(6_000)]  # one point later
        ([], ['resolved'])
        """
        cfg = self.config
        x, step = cfg.alert.correlation_points, cfg.interval_ms
        upto = slot_of(watermark_ms, step)
        due = [(at, g.alert_id, scope) for scope, g in self._groups.items()
               if (at := resolves_at_ms(g.last_ts_ms, step, x)) <= upto]
        return [self._resolve(scope) for _, _, scope in sorted(due)]

    def snapshot(self) -> dict[str, Any]:
        """Everything the future outputs depend on, as plain JSON-able data.

        >>> from streams.records import Anomaly
        >>> cfg = AlertGrouperConfig("i", 1_000, AlertConfig("a", 3))
        >>> g = cfg.build(None)
        >>> _ = g.add(Anomaly("i", "p", 0, "m", 1, 9.0, 0.9, 70, 0.3))
        >>> cfg.build(g.snapshot()).snapshot() == g.snapshot()
        True
        """
        return {
            "last_ts_ms": dict(self._last_ts),
            "open": {k: g.to_plain() for k, g in self._groups.items()},
            "closed_upto_ms": dict(self._closed_upto),
            "snoozed_from_ms": dict(self._snoozed_from),
        }

    # ------------------------------------------------------------------ helpers

    def _announce(self, scope: str, severity: float, slot_ms: int) -> bool:
        """Whether a new group (or single alert) may notify now; if so, the snooze restarts."""
        rules = self.config.alert
        if rules.min_severity is not None and severity < rules.min_severity:
            return False
        since = self._snoozed_from.get(scope)
        if (rules.snooze_points is not None and since is not None
                and slot_ms - since <= rules.snooze_points * self.config.interval_ms):
            return False
        self._snoozed_from[scope] = slot_ms
        return True

    def _resolve(self, scope: str) -> Alert:
        group = self._groups.pop(scope)
        self._closed_upto[scope] = slot_of(group.last_ts_ms, self.config.interval_ms)
        return self._record(group, "resolved", notify=group.announced)

    def _record(self, g: _Group, state: AlertState, notify: bool) -> Alert:
        cfg = self.config
        g.mark_shown()
        return Alert(
            g.alert_id, cfg.alert.name, cfg.inference_id, tuple(g.assets), g.first_ts_ms,
            g.last_ts_ms, g.count, g.max_severity, top_signals(g.contributions), state, notify,
            tuple(g.anomalies),
        )
