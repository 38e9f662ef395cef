"""The per-asset state store: load, restore, snapshot, forget — and the durability proof.

One worker holds in memory the state of each (inference, asset) it scores, keyed by
:func:`state_key`: the scorer's :class:`streams.scoring.AssetState`, the asset's event clock
(``event`` inferences), its alert groupers (:mod:`streams.alert_publishing`) and the anomalies
it published lately. The glue stores every :meth:`StateStore.snapshot` it is handed; the
store reads them back through an injected ``load`` on first use of an asset.

Snapshot policy:

* **epochs** — a stored snapshot of another epoch of the inference is not restored: the asset
  starts afresh (on the event clock, from where the earlier epoch stopped), keeping only its
  alert groups (they outlive an epoch);
* **recent anomalies** — a state keeps the anomalies it published for
  :data:`REPUBLISH_WINDOW_MS` (wall time), each with a *proof*: the input record whose batch
  published it. On restore (after a crash the snapshot may have reached the changelog while
  its anomalies did not reach their topic) the ones not yet durable are published again
  (anomaly keys are idempotent). A batch's anomaly is durable once its input partition's
  checkpoint (:mod:`streams.checkpoint`) is past the proof's offset; a tick's, once the glue
  saw the broker acknowledge it (:meth:`StateStore.acknowledge`).

>>> import numpy as np
>>> from streams.inference import InferenceConfig
>>> from streams.model import fit_model, ModelParams
>>> from streams.scoring import AssetScorer
>>> from streams.alert_publishing import AlertPublisher
>>> m = fit_model(np.zeros((50, 1)) + np.arange(50)[:, None] % 3,
...               ModelParams(model_id="m", signals=("v",), window_size=2))
>>> scorer = AssetScorer(InferenceConfig("inf", "m", "t"), m)
>>> stored = {}
>>> store = StateStore(stored.get, AlertPublisher())
>>> state = store.get("inf/a", 0, scorer)
>>> stored["inf/a"] = store.snapshot("inf/a")      # what the glue writes to its table
>>> store.forget("inf/a"); "inf/a" in store.states
False
>>> store.get("inf/a", 0, scorer).snapshot() == state.snapshot()   # restored, not new
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streams.alert_codec import alert_record
from streams.alert_publishing import AlertPublisher
from streams.alerts import Alert
from streams.checkpoint import checkpoint_key
from streams.clock import EventTimeClock
from streams.records import Anomaly, anomaly_from_plain, anomaly_to_plain
from streams.scoring import AssetScorer, AssetState
from streams.state_format import ASSET_STATE, StateFormatError

Snapshot = dict[str, Any]
Loader = Callable[[str], Any]
#: an input record, ``[topic, partition, offset]``: an anomaly published by the batch that took
#: it is durable once that partition's checkpoint (streams/checkpoint.py) is past it
Proof = list[Any]
#: the proof of an anomaly the glue saw acknowledged (:meth:`StateStore.acknowledge`)
ACKNOWLEDGED: Proof = ["acknowledged"]
#: How long (wall time) a state keeps the anomalies it published, to publish them again if it
#: is restored after a crash: well beyond the producer's flush before each offset commit.
REPUBLISH_WINDOW_MS = 30_000


def state_key(inference_id: str, asset_id: str) -> str:
    """The table key of one asset's state within one inference.

    >>> state_key("inf", "pump-1")
    'inf/pump-1'
    """
    return f"{inference_id}/{asset_id}"


class _Now:
    """The wall time the glue injected for this batch or tick (the idle rule's clock)."""

    __slots__ = ("ms",)

    def __init__(self) -> None:
        self.ms = 0

    def now_ms(self) -> int:
        return self.ms


class StateStore:
    """The asset states one worker holds, restored on first use from what ``load`` returns."""

    def __init__(self, load: Loader, alerts: AlertPublisher) -> None:
        self.load = load
        self.alerts = alerts
        #: the injected wall time (set by the engine per batch or tick)
        self.wall = _Now()
        #: state key → (home partition, state, the scorer it belongs to)
        self.states: dict[str, tuple[int, AssetState, AssetScorer]] = {}
        #: per ``event`` state: its clock, and the wall time its last point arrived
        self.event_clocks: dict[str, EventTimeClock] = {}
        self.last_arrival_ms: dict[str, int] = {}
        #: per state, the anomalies it published lately: (wall ms, plain anomaly, the input
        #: record whose batch published it, or None for a tick's)
        self.recent: dict[str, list[tuple[int, dict[str, Any], Proof | None]]] = {}
        #: anomalies of restored snapshots, to be published again with the next output
        self.republish: list[tuple[int, Anomaly]] = []
        #: per state and alert id, the latest alert record it published lately: (wall ms,
        #: plain alert, hooks, proof) — republished like anomalies when not proved durable
        self.recent_alerts: dict[str, dict[str, tuple[int, dict[str, Any], list[str], Proof | None]]] = {}
        self.republish_alerts: list[tuple[int, Alert, tuple[str, ...]]] = []
        #: per state, the last input offset of each (topic, partition) it took a point from:
        #: stored with the state itself, so a record re-delivered after a crash is known as
        #: taken even when the partition's checkpoint (written after the state) was lost
        self.taken: dict[str, dict[tuple[str, int], int]] = {}

    # ------------------------------------------------------------------ durability

    def checkpoint(self, tp: tuple[str, int]) -> int:
        """How far the stored state reaches into an input partition (0: nothing known)."""
        value = self.load(checkpoint_key(*tp))
        return value if isinstance(value, int) else 0

    def durable(self, proof: Proof | None) -> bool:
        """Whether the batch that took ``proof``'s record had its output acknowledged (or the
        glue said so: :meth:`acknowledge`)."""
        if proof == ACKNOWLEDGED:
            return True
        return proof is not None and proof[2] < self.checkpoint((proof[0], proof[1]))

    def published(self, key: str, anomaly: Anomaly, proof: Proof | None) -> None:
        """The state ``key`` published ``anomaly`` in the batch that took ``proof`` (None: a tick)."""
        self.recent.setdefault(key, []).append((self.wall.ms, anomaly_to_plain(anomaly), proof))

    def acknowledge(self, anomalies: Iterable[Anomaly]) -> dict[str, tuple[int, Snapshot]]:
        """The broker acknowledged these anomalies: mark them durable in their states; return
        the snapshots to store again."""
        out: dict[str, tuple[int, Snapshot]] = {}
        for anomaly in anomalies:
            key = state_key(anomaly.inference_id, anomaly.asset_id)
            recent, held = self.recent.get(key), self.states.get(key)
            if not recent or held is None:
                continue
            self.recent[key] = [(at, plain, ACKNOWLEDGED if plain.get("ts_ms") == anomaly.ts_ms
                                 or proof == ACKNOWLEDGED else proof)
                                for at, plain, proof in recent]
            out[key] = (held[0], self.snapshot(key))
        return out

    def published_alert(self, key: str, alert: Alert, hooks: tuple[str, ...],
                        proof: Proof | None) -> None:
        """The state ``key`` published ``alert`` (the group's latest record) in the batch that
        took ``proof``; only the latest record of each group is kept (an earlier one published
        again would overwrite it)."""
        self.recent_alerts.setdefault(key, {})[alert.alert_id] = (
            self.wall.ms, _alert_to_plain(alert), list(hooks), proof)

    def take_republish_alerts(self) -> list[tuple[int, Alert, tuple[str, ...]]]:
        """The restored alert records still to publish again (each handed out once)."""
        out, self.republish_alerts = self.republish_alerts, []
        return out

    def took(self, key: str, tp: tuple[str, int], offset: int) -> None:
        """The state ``key`` took a point of the record at ``offset`` of ``tp`` (a re-delivered
        record, earlier in the log, leaves the furthest offset as it is)."""
        taken = self.taken.setdefault(key, {})
        if offset > taken.get(tp, -1):
            taken[tp] = offset

    def has_taken(self, key: str, tp: tuple[str, int], offset: int) -> bool:
        """Whether the record at ``offset`` of ``tp`` is at or before the last this state took:
        the log is read in order, so such a record reached this state before (re-delivered).

        >>> store = StateStore(lambda k: None, None)  # type: ignore[arg-type]
        >>> store.took("i/a", ("t", 0), 41)
        >>> store.has_taken("i/a", ("t", 0), 41), store.has_taken("i/a", ("t", 0), 42)
        (True, False)
        """
        last = self.taken.get(key, {}).get(tp)
        return last is not None and offset <= last

    def take_republish(self) -> list[tuple[int, Anomaly]]:
        """The restored anomalies still to publish again (each handed out once)."""
        out, self.republish = self.republish, []
        return out

    # ------------------------------------------------------------------ states

    def get(self, key: str, partition: int, scorer: AssetScorer) -> AssetState:
        """The state held for ``key``; restored (or begun) if not held for this scorer."""
        held = self.states.get(key)
        if held is not None and held[0] == partition and held[2] is scorer:
            return held[1]
        snap = self.load(key)
        if snap is not None:
            try:
                snap = ASSET_STATE.migrated(snap)
            except StateFormatError:
                if scorer.owns(snap):
                    raise  # this epoch's state, unreadable: the inference's failure, named
                # an earlier epoch's, of a newer format: a new epoch reads only where it stopped
                snap = {"epoch": snap.get("epoch"), "last_ts_ms": snap.get("last_ts_ms")}
        # alert groups outlive an epoch: a group open when the inference was paused resolves
        # (the paused points count) instead of being forgotten
        alert_states = snap.get("alerts", {}) if snap is not None else {}
        earlier = None
        if snap is not None and not scorer.owns(snap):
            # another epoch's state: this one starts afresh (on the event clock, from where the
            # earlier one stopped: AssetScorer.new_state)
            earlier, snap = snap, None
        state = scorer.restore(snap) if snap is not None else scorer.new_state(earlier)
        self.states[key] = (partition, state, scorer)
        if snap is not None and snap.get("recent_anomalies"):
            # the crash window: the snapshot reached the changelog, its anomalies may not have
            # reached their topic. Those of a batch whose checkpoint is past its input are
            # durable (the checkpoint is written once the broker acknowledged the batch's
            # output); the others are published again (keys are idempotent)
            self.recent[key] = [(int(at), plain, proof)
                                for at, plain, proof in snap["recent_anomalies"]]
            self.republish += [(partition, anomaly_from_plain(plain))
                               for _, plain, proof in self.recent[key] if not self.durable(proof)]
        self.alerts.restore(key, scorer, alert_states)
        if snap is not None and snap.get("recent_alerts"):
            # the same crash window for alert records: a group's latest record not proved
            # durable is published again (the record key is the group's id; its notification
            # id is recognised by the hook outbox, so no hook is called twice)
            self.recent_alerts[key] = {plain["alert_id"]: (int(at), plain, list(hooks), proof)
                                       for at, plain, hooks, proof in snap["recent_alerts"]}
            self.republish_alerts += [(partition, _alert_from_plain(plain), tuple(hooks))
                                      for _, plain, hooks, proof in self.recent_alerts[key].values()
                                      if not self.durable(proof)]
        if snap is not None and snap.get("taken"):
            self.taken[key] = {(str(t), int(p)): int(o) for t, p, o in snap["taken"]}
        if scorer.inference.clock == "event":
            clock_state = snap.get("event_clock") if snap is not None else None
            # pure event time; the idle rule is the engine's. A restart is not idleness: the
            # idle timeout counts from now.
            self.event_clocks[key] = EventTimeClock(self.wall, None, state=clock_state)
            self.last_arrival_ms[key] = self.wall.ms
        return state

    def snapshot(self, key: str) -> Snapshot:
        """Everything the state's future outputs depend on, as plain data (recent anomalies
        older than the republish window are dropped)."""
        snap = self.states[key][1].snapshot()
        clock = self.event_clocks.get(key)
        if clock is not None:
            snap["event_clock"] = clock.snapshot()
        alerts = self.alerts.snapshot(key)
        if alerts:
            snap["alerts"] = alerts
        alerts_sent = self.recent_alerts.get(key)
        if alerts_sent:
            horizon = self.wall.ms - REPUBLISH_WINDOW_MS
            for alert_id in [a for a, r in alerts_sent.items() if r[0] < horizon]:
                del alerts_sent[alert_id]
            if alerts_sent:
                snap["recent_alerts"] = [[at, plain, hooks, proof]
                                         for at, plain, hooks, proof in alerts_sent.values()]
        taken = self.taken.get(key)
        if taken:
            snap["taken"] = [[t, p, o] for (t, p), o in taken.items()]
        recent = self.recent.get(key)
        if recent:
            horizon = self.wall.ms - REPUBLISH_WINDOW_MS
            recent[:] = [r for r in recent if r[0] >= horizon]
            snap["recent_anomalies"] = [[at, plain, proof] for at, plain, proof in recent]
        return ASSET_STATE.stamped(snap)

    def forget(self, key: str) -> None:
        """Drop the in-memory state (what is stored stays)."""
        del self.states[key]
        self.alerts.forget(key)
        self.recent.pop(key, None)
        self.taken.pop(key, None)
        self.recent_alerts.pop(key, None)
        self.event_clocks.pop(key, None)
        self.last_arrival_ms.pop(key, None)


def _alert_to_plain(alert: Alert) -> dict[str, Any]:
    """An alert as plain data, with what its notification needs (``notify``, anomalies)."""
    return {**alert_record(alert), "notify": alert.notify,
            "anomalies": [anomaly_to_plain(a) for a in alert.anomalies]}


def _alert_from_plain(plain: dict[str, Any]) -> Alert:
    """The alert :func:`_alert_to_plain` made.

    >>> from streams.alerts import Alert
    >>> a = Alert("id1", "cfg", "inf", ("p1",), 7, 9, 2, 0.5, ("t",), "open", True)
    >>> _alert_from_plain(_alert_to_plain(a)) == a
    True
    """
    return Alert(
        alert_id=str(plain["alert_id"]), alert_config=str(plain["alert_config"]),
        inference_id=str(plain["inference_id"]), assets=tuple(plain["assets"]),
        first_ts_ms=int(plain["first_ts"]), last_ts_ms=int(plain["last_ts"]),
        anomaly_count=int(plain["anomaly_count"]), max_severity=float(plain["max_severity"]),
        top_signals=tuple(plain["top_signals"]), state=plain["state"],
        notify=bool(plain.get("notify", False)),
        anomalies=tuple(anomaly_from_plain(a) for a in plain.get("anomalies", ())))
