"""The scoring engine of one worker: a batch of raw telemetry messages in, outputs and state out.

Pure: the glue hands in messages (topic, partition, offset, key, bytes) and a ``load``
function that returns an asset's last stored snapshot; the engine returns what to publish
(anomalies, dead-letter rejections, forwarded readings) and the snapshots to store, each
with the partition it belongs to.

:class:`Engine` is a façade over one module per concern: :mod:`streams.routing` (home
partitions, forwarding to by-asset topics), :mod:`streams.state_store` (per-asset states,
their snapshots, epochs and the durability proof of published anomalies),
:mod:`streams.alert_publishing` (per-asset alert groupers) and :mod:`streams.due_schedule`
(when each asset next falls due: :meth:`Engine.tick` visits only those).

Every asset has a home partition (:func:`streams.partitioning.home_partition`): its state,
its anomalies and the readings it is scored from all live there. A reading that arrives on
its home partition is scored at once; one that arrives elsewhere (a gateway batch of several
assets under one key, a producer with another partitioner) is returned in
``BatchOutput.forward`` for the glue to send to the source topic's *by-asset* topic
(:func:`by_asset_topic`) on the home partition, whence it comes back and is scored. So an
asset is only ever scored in one place, whatever partition its readings arrive on. Hot
state stays in memory between batches; :meth:`Engine.drop_partitions` forgets the state of
partitions this worker no longer owns.

>>> import numpy as np
>>> from streams.model import fit_model, ModelParams
>>> from streams.inference import InferenceConfig
>>> from streams.scoring import AssetScorer
>>> model = fit_model(np.random.default_rng(0).normal(size=(300, 1)),
...                   ModelParams(model_id="m", signals=("v",), window_size=4))
>>> scorer = AssetScorer(InferenceConfig("inf", "m", "tele"), model)
>>> engine = Engine([scorer], load=lambda k: None, partitions=1)
>>> t0 = 1_767_225_600_000
>>> msgs = [Message("tele", 0, i, b"a", b'{"asset_id":"a","ts":%d,"signals":{"v":0.1}}'
...                 % (t0 + 1000 * i)) for i in range(5)]
>>> out = engine.process_batch(msgs + [Message("tele", 0, 5, b"a", b"not json")],
...                            now_ms=t0 + 3_600_000)  # the wall clock: an hour later
>>> out.counts["received"], out.counts["warming_up"], out.counts["scored"], len(out.rejections)
(6, 4, 1, 1)
>>> sorted(out.snapshots)
['inf/a']

With four partitions, asset ``a`` lives on partition 0; arriving on 1, it is forwarded:

>>> elsewhere = Message("tele", 1, 0, b"a", msgs[0].value)
>>> routed = Engine([scorer], load=lambda k: None, partitions=4).process_batch([elsewhere])
>>> [(topic, part, [r.ts_ms for r in rs]) for topic, part, rs, _ in routed.forward]
[('tele.by-asset', 0, [1767225600000])]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from streams.adoption import Adoption
from streams.alert_publishing import AlertPublisher
from streams.alerts import Alert
from streams.arrival import ArrivalClocks
from streams.correlation import FeedItem, Progress, partition_progress
from streams.decode import DecodeLimits, check_arrival, decode_telemetry
from streams.due_schedule import NOW, DueSchedule
from streams.records import Anomaly, Reading, Rejection
from streams.routing import BY_ASSET_SUFFIX, Forwarding, HomePartitions, by_asset_topic
from streams.scoring import AssetScorer, AssetState
from streams.state_store import (
    ACKNOWLEDGED,
    REPUBLISH_WINDOW_MS,
    Loader,
    Proof,
    Snapshot,
    StateStore,
    state_key,
)
from streams.watermark import Duplicate, Gap, Late, slot_of

__all__ = [
    "ACKNOWLEDGED", "BY_ASSET_SUFFIX", "PROGRESS_REPEAT_MS", "REPUBLISH_WINDOW_MS", "BatchOutput",
    "Engine", "InferenceProgress", "Loader", "Message", "Proof", "Snapshot", "by_asset_topic",
    "state_key",
]

#: the clock domain of the idle rule of ``event`` inferences (the injected wall time)
_WALL: Hashable = "wall"


@dataclass(frozen=True, slots=True)
class Message:
    """One raw record as it came off a telemetry topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    #: the record's Kafka timestamp (when it reached the broker: :mod:`streams.arrival`)
    timestamp_ms: int | None = None


@dataclass(slots=True)
class BatchOutput:
    """What a batch produced: to publish, to store, and what happened, counted."""

    anomalies: list[tuple[int, Anomaly]] = field(default_factory=list)
    rejections: list[tuple[Message, Rejection]] = field(default_factory=list)
    #: (by-asset topic, home partition, readings, when their records reached the broker)
    forward: list[tuple[str, int, list[Reading], int | None]] = field(default_factory=list)
    late: list[tuple[int, str, Late]] = field(default_factory=list)
    gaps: list[tuple[int, str, str, Gap]] = field(default_factory=list)
    #: (home partition, inference id, state key, the model's signals, adoption): lasting
    #: changes adopted as an asset's new normal, or left for its trained level
    #: (streams/adoption.py)
    adoptions: list[tuple[int, str, str, tuple[str, ...], Adoption]] = field(
        default_factory=list)
    #: per (inference id, outcome): what happened to points once an inference took them
    by_inference: Counter[tuple[str, str]] = field(default_factory=Counter)
    snapshots: dict[str, tuple[int, Snapshot]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    #: inference id → the error that stopped its work in this batch (the others went on)
    failures: dict[str, str] = field(default_factory=dict)
    #: (partition, alert, hook names) for every alert record the batch caused (SPEC §7)
    alerts: list[tuple[int, Alert, tuple[str, ...]]] = field(default_factory=list)
    #: (inference id, item): the feed of inference-scope alerts (streams/correlation.py)
    correlation: list[tuple[str, FeedItem]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InferenceProgress:
    """Where one inference stands on this worker's assets (for ``inference show``)."""

    assets: int
    warming_up: int
    scored: int
    last_finalised_ms: int | None


#: A partition's unchanged progress is sent again this often (a crash may have lost the last).
PROGRESS_REPEAT_MS = 5_000


class Engine:
    """Routes readings to the inferences that want them and keeps their per-asset state."""

    def __init__(
        self,
        scorers: Iterable[AssetScorer],
        load: Loader,
        partitions: int,
        limits: DecodeLimits | None = None,
        topics: Iterable[str] = (),
    ) -> None:
        scorers = list(scorers)
        #: the telemetry topics this engine reads (fixed: the consumer subscribes to them)
        self.served = sorted({*topics, *(s.inference.topic for s in scorers)})
        self.scorers_by_topic: dict[str, list[AssetScorer]] = {}
        self._index(scorers)
        #: (inference id, partition) whose slots are not finalised until pre-fill is done
        self.held: set[tuple[str, int]] = set()
        #: per served topic, the signal names its readings carried (scheduling checks them)
        self.signals_seen: dict[str, set[str]] = {t: set() for t in self.served}
        #: (topic, partition) → the next offset the live stream will deliver (pre-fill stops there)
        self.positions: dict[tuple[str, int], int] = {}
        #: (topic, partition) → the first offset the live stream delivered here (where it began)
        self.first_offsets: dict[tuple[str, int], int] = {}
        self.homes = HomePartitions(partitions)
        self.alert_publisher = AlertPublisher()
        self.store = StateStore(load, self.alert_publisher)
        self._wall = self.store.wall
        #: per asset state, the last input record of this batch that touched it
        self._touched_by: dict[str, Proof] = {}
        #: the source partitions this worker holds (set by the glue on assignment)
        self.owned: set[int] = set()
        #: (inference id, partition) → (progress, wall ms) last put on the correlation feed
        self._progress_sent: dict[tuple[str, int], tuple[int | None, int]] = {}
        self.limits = limits or DecodeLimits()
        #: how far in broker time this worker has read each partition: ``wall`` inferences'
        #: clock, so a point is late by when it reached Kafka, not when it was read
        self.arrival = ArrivalClocks()
        # --- the due schedule (tick visits only due assets; docs/state-and-recovery.md)
        self._due = DueSchedule()
        #: states of held (inference, partition) pairs, scheduled again on release
        self._parked: dict[tuple[str, int], set[str]] = {}
        #: states visited on every tick: those of inferences with inference-scope alerts
        #: (their progress on the correlation feed reads every asset's watermark)
        self._always: set[str] = set()
        #: (topic, partition) of ``wall`` states → that arrival clock at the last tick
        self._tick_clocks: dict[tuple[str, int], int | None] = {}
        self._tick_seq = 0
        #: state key → the last tick its watermark was brought up to (see _catch_up)
        self._synced: dict[str, int] = {}
        #: ``event`` states restored by :meth:`adopt` that no point has reached since: their
        #: idle rule counts on the arrival clock (a backlog to read is not idleness)
        self._adopted: set[str] = set()
        #: whether :meth:`process_batch` leaves the snapshots of the states it changed for
        #: :meth:`take_snapshots` (the glue then stores them on a cadence, and commits the
        #: batches' input only once they are stored) instead of returning them with each batch
        self.defer_snapshots = False
        #: state key → home partition: states changed by a batch since the last take_snapshots
        self._dirty: dict[str, int] = {}
        self._deferring = False

    # ------------------------------------------------------------------ façade attributes

    @property
    def states(self) -> dict[str, tuple[int, AssetState, AssetScorer]]:
        """State key → (home partition, state, scorer): every asset state held here."""
        return self.store.states

    @property
    def load(self) -> Loader:
        """Returns an asset's (or a checkpoint's) last stored value; the glue may replace it."""
        return self.store.load

    @load.setter
    def load(self, load: Loader) -> None:
        self.store.load = load

    @property
    def partitions(self) -> int:
        """How many partitions the source topics have (the home partition depends on it)."""
        return self.homes.partitions

    @partitions.setter
    def partitions(self, partitions: int) -> None:
        if partitions != self.homes.partitions:
            self.homes = HomePartitions(partitions)

    @property
    def topics(self) -> list[str]:
        """Every topic the engine reads: the sources and their by-asset topics."""
        return sorted([*self.served, *(by_asset_topic(t) for t in self.served)])

    @property
    def source_topics(self) -> list[str]:
        return list(self.served)

    @property
    def scorers(self) -> list[AssetScorer]:
        """The active inferences' scorers, one per inference."""
        return [s for t in self.served for s in self.scorers_by_topic.get(t, ())]

    def scorer(self, inference_id: str) -> AssetScorer | None:
        """The active scorer of an inference, if it is active here."""
        return next((s for s in self.scorers if s.inference.inference_id == inference_id), None)

    def _index(self, scorers: Iterable[AssetScorer]) -> None:
        by_topic: dict[str, list[AssetScorer]] = {}
        for scorer in scorers:
            topic = scorer.inference.topic
            if topic not in self.served:
                raise ValueError(f"inference {scorer.inference.inference_id!r} reads topic "
                                 f"{topic!r}, which this engine does not serve")
            by_topic.setdefault(topic, []).append(scorer)
        for source in list(by_topic):
            by_topic[by_asset_topic(source)] = by_topic[source]
        self.scorers_by_topic = by_topic

    # ------------------------------------------------------------------ control

    def set_scorers(self, scorers: Iterable[AssetScorer]) -> list[AssetScorer]:
        """Make ``scorers`` the active set; return those that start a new epoch here.

        The in-memory state of an inference that stopped, or whose epoch changed, is dropped
        (its stored snapshots are then ignored: another epoch's state is not restored).

        >>> import numpy as np
        >>> from streams.model import fit_model, ModelParams
        >>> from streams.inference import InferenceConfig
        >>> m = fit_model(np.zeros((50, 1)) + np.arange(50)[:, None] % 3,
        ...               ModelParams(model_id="m", signals=("v",), window_size=2))
        >>> e = Engine([], load=lambda k: None, partitions=1, topics=["t"])
        >>> [s.epoch for s in e.set_scorers([AssetScorer(InferenceConfig("i", "m", "t"), m, 1)])]
        [1]
        >>> e.set_scorers([AssetScorer(InferenceConfig("i", "m", "t"), m, 1)])
        []
        """
        scorers = list(scorers)
        before = {s.inference.inference_id: s.epoch for s in self.scorers}
        self._index(scorers)
        now = {s.inference.inference_id: s.epoch for s in scorers}
        stale = {i for i, epoch in before.items() if now.get(i) != epoch}
        for key in [k for k, (_, _, sc) in self.states.items() if sc.inference.inference_id in stale]:
            self._forget(key)
        self.held = {(i, p) for i, p in self.held if i in now and i not in stale}
        self._unpark()
        return [s for s in scorers if before.get(s.inference.inference_id) != s.epoch]

    def hold(self, inference_id: str, partitions: Iterable[int]) -> None:
        """Finalise nothing of the inference on these partitions until :meth:`release`
        (while its windows are pre-filled from history)."""
        self.held |= {(inference_id, p) for p in partitions}

    def release(self, inference_id: str, partition: int) -> None:
        self.held.discard((inference_id, partition))
        self._unpark()

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forget the in-memory state of assets in partitions no longer owned; return how many."""
        gone = set(partitions)
        keys = [k for k, (p, _, _) in self.states.items() if p in gone]
        for k in keys:
            self._forget(k)
        self.held = {(i, p) for i, p in self.held if p not in gone}
        self._parked = {ip: ks for ip, ks in self._parked.items() if ip[1] not in gone}
        self._tick_clocks = {tp: c for tp, c in self._tick_clocks.items() if tp[1] not in gone}
        self.owned -= gone
        self._progress_sent = {k: v for k, v in self._progress_sent.items() if k[1] not in gone}
        self.positions = {tp: o for tp, o in self.positions.items() if tp[1] not in gone}
        self.first_offsets = {tp: o for tp, o in self.first_offsets.items() if tp[1] not in gone}
        self.arrival.forget(gone)
        self._dirty = {k: p for k, p in self._dirty.items() if p not in gone}
        return len(keys)

    def acknowledge(self, anomalies: Iterable[Anomaly]) -> dict[str, tuple[int, Snapshot]]:
        """The broker acknowledged these anomalies (a tick's, which no input checkpoint
        vouches for): mark them durable in their states; return the snapshots to store again.

        >>> Engine([], load=lambda k: None, partitions=1).acknowledge([])
        {}
        """
        return self.store.acknowledge(anomalies)

    def adopt(self, keys: Iterable[str], now_ms: int) -> int:
        """Restore now the stored states among ``keys`` that this worker scores, rather than
        on their asset's next point; return how many were restored.

        After a crash the new owner reads again only from the last committed offset, so an
        asset whose records were all committed is never touched again if it has gone silent:
        its state would keep what the crash left undone — outputs not proved durable (see
        :mod:`streams.state_store`), slots still pending. Adopted, those outputs are published
        again with the next output and the pending slots fall to the idle rule, counted from
        now on the arrival clock of the asset's partitions: only once the worker has read
        everything that reached the broker until ``idle_timeout_ms`` after ``now_ms`` with no
        point of the asset among it. Keys of inferences not active here, of another epoch,
        of partitions not owned, or already held are skipped.

        >>> Engine([], load=lambda k: None, partitions=1).adopt(["inf/p", "#offset/t/0"], 0)
        0
        """
        self._wall.ms = now_ms
        adopted = 0
        for key in keys:
            if key in self.states:
                continue
            inference_id, _, asset_id = key.partition("/")
            scorer = self.scorer(inference_id)
            if scorer is None or not asset_id or not scorer.inference.wants(asset_id):
                continue
            home = self.homes.of(asset_id)
            snap = self.store.load(key)
            if home not in self.owned or not isinstance(snap, dict) or not scorer.owns(snap):
                continue
            self._state(key, home, scorer)
            if key in self.store.event_clocks:
                self._adopted.add(key)
            self._schedule(key)
            adopted += 1
        return adopted

    # ------------------------------------------------------------------ pre-fill

    def prefill(self, inference_id: str, partition: int, readings: Iterable[Reading]) -> BatchOutput:
        """Take history readings of one partition into the inference's slots, not finalising.

        Readings of assets whose home is another partition, or that the inference does not
        want, are skipped; ones already held (the live stream got there first) are dropped as
        duplicates, silently. Finalised with everything else once the hold is released.
        """
        out = BatchOutput()
        scorer = self.scorer(inference_id)
        if scorer is None:
            return out
        touched: dict[str, tuple[int, AssetScorer]] = {}
        home_of = self.homes.of
        for reading in readings:
            if not scorer.inference.wants(reading.asset_id) or home_of(reading.asset_id) != partition:
                continue
            key = state_key(inference_id, reading.asset_id)
            state = self._state(key, partition, scorer)
            if state.start_ms > scorer.inference.start_ms and \
                    reading.ts_ms < scorer.history_from_ms(state.start_ms):
                continue  # before what the window of an asset that resumes later needs
            if isinstance(scorer.accept(state, reading), Late | Duplicate):
                continue
            out.counts["prefilled"] += 1
            touched[key] = (partition, scorer)
            if scorer.inference.clock == "event":
                self.store.event_clocks[key].observe(reading.ts_ms)
        self._finalise(touched, out, always_snapshot=True)
        return out

    def prefill_messages(self, inference_id: str, partition: int, messages: Iterable[Message],
                         from_ms: int) -> BatchOutput:
        """:meth:`prefill` from raw history records, keeping readings stamped at or after
        ``from_ms`` (records the edge refuses were dead-lettered when they first came)."""
        readings = [r for m in messages
                    if not isinstance(decoded := decode_telemetry(m.value, m.key, self.limits), Rejection)
                    and check_arrival(decoded, m.value, m.timestamp_ms, self.limits) is None
                    for r in decoded if r.ts_ms >= from_ms]
        return self.prefill(inference_id, partition, readings)

    def progress(self) -> dict[str, InferenceProgress]:
        """Per inference: assets held here, how many still warm up, points scored, the newest
        finalised slot."""
        acc: dict[str, list[Any]] = {}
        for _, state, scorer in self.states.values():
            row = acc.setdefault(scorer.inference.inference_id, [0, 0, 0, None])
            row[0] += 1
            row[1] += not state.window.full
            row[2] += state.scored
            wm = state.watermark.watermark_ms
            if wm is not None and (row[3] is None or wm > row[3]):
                row[3] = wm
        return {i: InferenceProgress(*row) for i, row in acc.items()}

    # ------------------------------------------------------------------ the live path

    def process_batch(self, messages: Sequence[Message], now_ms: int = 0) -> BatchOutput:
        """Decode, route and take the batch's points into their slots; then finalise what is due.

        ``now_ms`` is the wall clock, injected: the inference clock of ``wall`` inferences and
        the idle rule of ``event`` ones.
        """
        self._wall.ms = now_ms
        out = BatchOutput()
        counts = out.counts
        touched: dict[str, tuple[int, AssetScorer]] = {}
        routing = Forwarding(self.homes)
        positions = self.positions
        arrival = self.arrival
        stored: dict[tuple[str, int], int] = {}
        event_clocks = self.store.event_clocks
        last_arrival = self.store.last_arrival_ms
        synced, seq = self._synced, self._tick_seq
        adopted = self._adopted
        self._touched_by = {}
        for msg in messages:
            tp = (msg.topic, msg.partition)
            if tp not in stored:
                stored[tp] = self.store.checkpoint(tp)
            # a record the stored state already took (re-delivered after a crash or a move):
            # not late if its slot is finalised — it was scored, or published late, then
            redelivered = msg.offset < stored[tp]
            if tp not in positions:
                self.first_offsets.setdefault(tp, msg.offset)
            positions[tp] = msg.offset + 1
            arrival.read(tp, msg.offset, msg.timestamp_ms, now_ms)
            decoded = decode_telemetry(msg.value, msg.key, self.limits)
            if not isinstance(decoded, Rejection):
                decoded = check_arrival(decoded, msg.value, msg.timestamp_ms, self.limits) or decoded
            if isinstance(decoded, Rejection):
                counts["received"] += 1
                counts["invalid"] += 1
                out.rejections.append((msg, decoded))
                continue
            if not msg.topic.endswith(BY_ASSET_SUFFIX):
                counts["received"] += len(decoded)
            scorers = self.scorers_by_topic.get(msg.topic, ())
            seen = self.signals_seen.get(msg.topic)
            proof: Proof = [msg.topic, msg.partition, msg.offset]
            for reading in decoded:
                if seen is not None:
                    seen.update(reading.signals)
                home = routing.route(msg.topic, msg.partition, reading, msg.timestamp_ms)
                if home is None:
                    counts["forwarded"] += 1
                    continue
                asset_id = reading.asset_id
                for scorer in scorers:
                    inference = scorer.inference
                    inference_id = inference.inference_id
                    if not inference.wants(asset_id) or inference_id in out.failures:
                        continue
                    key = state_key(inference_id, asset_id)
                    try:
                        state = self._state(key, home, scorer)
                        if synced.get(key, seq) < seq:
                            self._catch_up(key, home, scorer, out)
                        added = scorer.accept(state, reading)
                    except Exception as exc:  # one inference's fault must not stop the others
                        out.failures[inference_id] = _describe(exc)
                        continue
                    if isinstance(added, Late) and (redelivered or
                                                    self.store.has_taken(key, tp, msg.offset)):
                        added = Duplicate(reading, reading.ts_ms, added.slot_ms)
                    if isinstance(added, Late):
                        counts["late"] += 1
                        out.by_inference[(inference_id, "late")] += 1
                        out.late.append((home, inference_id, added))
                        continue
                    if isinstance(added, Duplicate):
                        counts["duplicate"] += 1
                        out.by_inference[(inference_id, "duplicate")] += 1
                    touched[key] = (home, scorer)
                    self._touched_by[key] = proof
                    self.store.took(key, tp, msg.offset)
                    clock = event_clocks.get(key)
                    if clock is not None:
                        clock.observe(reading.ts_ms)
                        last_arrival[key] = now_ms
                        if adopted:
                            adopted.discard(key)
        out.forward = routing.records()
        self._deferring = self.defer_snapshots
        try:
            self._finalise(touched, out, always_snapshot=True)
        finally:
            self._deferring = False
        self._touched_by = {}
        return out

    def take_snapshots(self) -> dict[str, tuple[int, Snapshot]]:
        """The snapshots of every state a batch changed since the last call (with
        :attr:`defer_snapshots`): once they are stored, those batches' input may be committed.
        States dropped since (partitions revoked) are left out: their input is not committed.

        >>> import numpy as np
        >>> from streams.inference import InferenceConfig
        >>> from streams.model import fit_model, ModelParams
        >>> from streams.scoring import AssetScorer
        >>> model = fit_model(np.random.default_rng(0).normal(size=(300, 1)),
        ...                   ModelParams(model_id="m", signals=("v",), window_size=4))
        >>> engine = Engine([AssetScorer(InferenceConfig("inf", "m", "t"), model)],
        ...                 load=lambda k: None, partitions=1)
        >>> engine.defer_snapshots = True
        >>> msg = Message("t", 0, 0, b"p", b'{"asset_id":"p","ts":1767225600000,"signals":{"v":1}}')
        >>> engine.process_batch([msg]).snapshots, sorted(engine.take_snapshots())
        ({}, ['inf/p'])
        >>> engine.take_snapshots()
        {}
        """
        dirty, self._dirty = self._dirty, {}
        states = self.states
        return {key: (home, self.store.snapshot(key)) for key, home in dirty.items()
                if (held := states.get(key)) is not None and held[0] == home}

    def _keep_snapshot(self, out: BatchOutput, key: str, home: int) -> None:
        """Store ``key``'s state: with this batch's output, or later (:meth:`take_snapshots`)."""
        if self._deferring:
            self._dirty[key] = home
        else:
            out.snapshots[key] = (home, self.store.snapshot(key))

    def tick(self, now_ms: int) -> BatchOutput:
        """Finalise what has fallen due since the last batch, for every asset held (idle ones
        too): only the assets whose next due time has come are visited."""
        self._wall.ms = now_ms
        self._tick_seq += 1
        out = BatchOutput()
        visit: dict[str, tuple[int, AssetScorer]] = {}
        states = self.states
        for domain in list(self._tick_clocks):
            topic, home = domain
            clock = self._arrival_ms(topic, home, now_ms)
            self._tick_clocks[domain] = clock
            if clock is not None:
                for key in self._due.pop_due(domain, clock):
                    if (held := states.get(key)) is not None:
                        visit[key] = (held[0], held[2])
        for key in self._due.pop_due(_WALL, now_ms):
            if (held := states.get(key)) is not None:
                visit[key] = (held[0], held[2])
        for key in self._always:
            held = states[key]
            visit[key] = (held[0], held[2])
        self._finalise(visit, out, always_snapshot=False)
        self._report_progress(out)
        return out

    # ------------------------------------------------------------------ the due schedule

    def _schedule(self, key: str) -> None:
        """Put the state's next due time on the schedule (parked while its pair is held)."""
        held = self.states.get(key)
        if held is None:
            self._due.discard(key)
            return
        home, state, scorer = held
        inference = scorer.inference
        if (inference.inference_id, home) in self.held:
            self._due.discard(key)
            self._parked.setdefault((inference.inference_id, home), set()).add(key)
            return
        wm = state.watermark
        clock = self.store.event_clocks.get(key)
        if clock is None:
            self._due.set(key, (inference.topic, home), wm.next_due_at_ms())
            return
        # the event clock moves only when a point is observed (then the batch finalises the
        # asset and schedules it again); between points only the idle rule can make it due
        next_due = wm.next_due_at_ms()
        if next_due is not None and next_due <= clock.now_ms():
            self._due.set(key, _WALL, NOW)
        elif wm.pending():
            arrived = self.store.last_arrival_ms.get(key, self._wall.ms)
            if key in self._adopted:  # idle by what has been read since (see adopt)
                domain = (inference.topic, home)
                self._tick_clocks.setdefault(domain, None)
                self._due.set(key, domain, arrived + inference.idle_timeout_ms)
            else:
                self._due.set(key, _WALL, arrived + inference.idle_timeout_ms)
        else:
            self._due.discard(key)

    def _unpark(self) -> None:
        """Schedule again the states of pairs no longer held."""
        for pair in [p for p in self._parked if p not in self.held]:
            for key in self._parked.pop(pair):
                self._schedule(key)

    def _catch_up(self, key: str, home: int, scorer: AssetScorer, out: BatchOutput) -> None:
        """Bring a ``wall`` state's watermark to where the last tick would have left it.

        A tick skips assets with nothing due, so their watermark does not move with the clock;
        a point arriving later must still find it there (else a point for a slot the tick
        passed would be scored instead of late). Nothing falls due here: had it, the tick
        would have visited the asset.
        """
        self._synced[key] = self._tick_seq
        clock = self._tick_clocks.get((scorer.inference.topic, home))
        if clock is None or key in self.store.event_clocks or \
                (scorer.inference.inference_id, home) in self.held:
            return
        self._finalise_one(key, home, scorer, out, always_snapshot=False, now_ms=clock)

    # ------------------------------------------------------------------ finalising

    def _report_progress(self, out: BatchOutput) -> None:
        """Put each owned partition's progress on the correlation feed of every inference with
        inference-scope alerts, when it changed (or has not been sent for a while)."""
        correlated = [s for s in self.scorers if s.correlates]
        if not correlated:
            return
        wall = self._wall.ms
        last_arrival = self.store.last_arrival_ms
        per: dict[tuple[str, int], list[tuple[int | None, bool]]] = {}
        for key in self._always:
            part, state, scorer = self.states[key]
            idle = key in self.store.event_clocks and \
                wall - last_arrival.get(key, wall) >= scorer.inference.idle_timeout_ms
            per.setdefault((scorer.inference.inference_id, part), []).append(
                (_progress_of(state, scorer), idle))
        for scorer in correlated:
            inference_id = scorer.inference.inference_id
            for part in sorted(self.owned):
                if (inference_id, part) in self.held or inference_id in out.failures:
                    continue
                progress = partition_progress(per.get((inference_id, part), ()))
                sent = self._progress_sent.get((inference_id, part))
                if sent is not None and sent[0] == progress and wall - sent[1] < PROGRESS_REPEAT_MS:
                    continue
                self._progress_sent[(inference_id, part)] = (progress, wall)
                out.correlation.append((inference_id, Progress(part, progress)))

    def _finalise(self, items: dict[str, tuple[int, AssetScorer]], out: BatchOutput,
                  always_snapshot: bool) -> None:
        republish = self.store.take_republish()
        if republish:
            out.anomalies += republish
            out.correlation += [(a.inference_id, a) for _, a in republish
                                if (s := self.scorer(a.inference_id)) is not None and s.correlates]
            out.counts["republished"] += len(republish)
        republish_alerts = self.store.take_republish_alerts()
        if republish_alerts:
            out.alerts += republish_alerts
            out.counts["republished_alerts"] += len(republish_alerts)
        for key, (home, scorer) in items.items():
            inference = scorer.inference
            try:
                if (inference.inference_id, home) in self.held or \
                        inference.inference_id in out.failures:
                    if always_snapshot and key in self.states:
                        self._keep_snapshot(out, key, home)
                    continue
                self._finalise_one(key, home, scorer, out, always_snapshot)
            except Exception as exc:  # one inference's fault must not stop the others
                out.failures[inference.inference_id] = _describe(exc)
            finally:
                self._schedule(key)

    def _finalise_one(self, key: str, home: int, scorer: AssetScorer, out: BatchOutput,
                      always_snapshot: bool, now_ms: int | None = None) -> None:
        counts = out.counts
        state = self.states[key][1]
        inference = scorer.inference
        wall = self._wall.ms
        clock = self.store.event_clocks.get(key)
        if now_ms is not None:
            now = now_ms
        elif clock is None:
            arrived = self._arrival_ms(inference.topic, home, wall)
            if arrived is None:  # where reading this partition stands is not known yet: wait
                if always_snapshot:
                    self._keep_snapshot(out, key, home)
                return
            now = arrived
        else:
            now = clock.now_ms()
            idle_ms = self._idle_ms(key, home, inference.topic, wall)
            if idle_ms >= inference.idle_timeout_ms:
                now = max(now, scorer.due_of_last_pending(state))
        self._synced[key] = self._tick_seq
        outcomes = scorer.finalise(state, now)
        by_inference = out.by_inference
        inference_id = inference.inference_id
        if not outcomes:
            if always_snapshot:
                self._keep_snapshot(out, key, home)
            return
        for kind, n in Counter(map(_kind_of, outcomes)).items():
            counts[kind] += n
            by_inference[(inference_id, kind)] += n
        filled = sum(map(_filled_of, outcomes))
        if filled:
            counts["filled"] += filled
            by_inference[(inference_id, "filled")] += filled
        # the few outcomes with more than a count to them
        for outcome in [o for o in outcomes if o.anomaly is not None or o.gap is not None
                        or o.adoption is not None]:
            if outcome.anomaly is not None:
                counts["anomalies"] += 1
                out.anomalies.append((home, outcome.anomaly))
                if scorer.correlates:
                    out.correlation.append((inference_id, outcome.anomaly))
                self.store.published(key, outcome.anomaly, self._touched_by.get(key))
            if outcome.gap is not None:
                counts["gap_points"] += outcome.gap.points
                out.gaps.append((home, inference_id, key, outcome.gap))
            if outcome.adoption is not None:
                counts["regimes_adopted"] += 1
                out.adoptions.append((home, inference_id, key, scorer.model.signals,
                                      outcome.adoption))
        published = self.alert_publisher.publish(key, home, scorer, outcomes,
                                                 state.watermark.watermark_ms)
        for _, alert, hooks in published:
            self.store.published_alert(key, alert, hooks, self._touched_by.get(key))
        out.alerts += published
        self._keep_snapshot(out, key, home)

    # ------------------------------------------------------------------ states

    def _state(self, key: str, partition: int, scorer: AssetScorer) -> AssetState:
        held = self.states.get(key)
        if held is not None and held[0] == partition and held[2] is scorer:
            return held[1]
        state = self.store.get(key, partition, scorer)
        self._synced[key] = self._tick_seq
        if scorer.correlates:
            self._always.add(key)
        else:
            self._always.discard(key)
        if scorer.inference.clock != "event":
            self._tick_clocks.setdefault((scorer.inference.topic, partition), None)
        return state

    def _idle_ms(self, key: str, home: int, topic: str, wall: int) -> int:
        """How long an ``event`` state has had no point: on the wall clock since its last one
        arrived, or for an adopted state on the arrival clock since its adoption."""
        since = self.store.last_arrival_ms.get(key, wall)
        if key not in self._adopted:
            return wall - since
        read = self._arrival_ms(topic, home, wall)
        return 0 if read is None else read - since

    def _arrival_ms(self, topic: str, home: int, wall: int) -> int | None:
        """The arrival clock of an asset's readings: its home partition of ``topic`` and of
        the by-asset topic its forwarded readings come on (None: not known yet)."""
        return self.arrival.clock_ms(((topic, home), (by_asset_topic(topic), home)), wall)

    def _forget(self, key: str) -> None:
        self.store.forget(key)
        self._adopted.discard(key)
        self._due.discard(key)
        self._synced.pop(key, None)
        self._always.discard(key)
        for keys in self._parked.values():
            keys.discard(key)


#: an outcome's kind, and whether its point was filled (counted a batch at a time, in C)
_kind_of = attrgetter("kind")
_filled_of = attrgetter("filled")


def _progress_of(state: AssetState, scorer: AssetScorer) -> int | None:
    """The slot up to which an asset has been scored; before its first, the slot before its
    first pending point (it cannot add anything earlier)."""
    wm = state.watermark
    if wm.watermark_ms is not None:
        return wm.watermark_ms
    pending = wm.pending()
    return slot_of(pending[0].ts_ms, scorer.model.interval_ms) - scorer.model.interval_ms \
        if pending else None


def _describe(exc: BaseException) -> str:
    """One line naming an unexpected error, for a status record."""
    return f"{type(exc).__name__}: {exc}"[:500]
