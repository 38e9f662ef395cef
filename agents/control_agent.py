"""The control plane on the worker (SPEC §5.4; docs/control.md).

* **The controller**: a Faust agent on the one-partition control topic, so exactly one worker
  of the group decides, in topic order. Its table (``control-state``, changelog-backed) holds
  every inference's state and every command's result; it applies :func:`streams.control.decide`
  and publishes the new state (compacted status topic, keyed by inference id), the result and
  any gap (event log). A command id seen before gets its first result again.
* **The sync** (:class:`InferenceSync`, on every worker): follows the status topic, turns the
  Active states into scorers for the engine, holds and pre-fills each new epoch's slots per
  owned partition from the topic's history, reports an inference that keeps failing (→
  SystemPaused, the others go on) and publishes each inference's progress.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import faust

from agents.connection import KafkaConnection
from agents.history import read_history
from agents.model_store import ModelStore, ModelStoreError
from agents.replay_desk import ReplayDesk
from agents.send_buffer import Sends
from agents.settings import Settings
from agents.topic_view import TopicView
from streams.checkpoint import checkpoint_key
from streams.codec import dumps, loads
from streams.control import Command, Decision, InferenceState, ModelInfo, decide
from streams.engine import BatchOutput, Engine, Message, by_asset_topic
from streams.model import Model
from streams.replay import ReplayState
from streams.scoring import AssetScorer

log = logging.getLogger(__name__)

Publish = Callable[[BatchOutput], None]


def decode_state(value: bytes) -> InferenceState:
    try:
        return InferenceState.from_record(loads(value))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an inference state: {exc}") from exc


def model_info(store: ModelStore, model_id: str, version: int | None) -> ModelInfo | None:
    """What the control plane needs of a stored model: status, signals, or why it is unusable."""
    versions = sorted(set(store.versions(model_id)) | set(store.record_versions(model_id)))
    if not versions:
        return None
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        return None
    record = store.load_record(model_id, chosen)
    if record is not None and record.status.value != "completed":
        return ModelInfo(model_id, chosen, record.status.value, (), record.reason)
    try:
        model = store.load(model_id, chosen)
    except ModelStoreError as exc:
        return ModelInfo(model_id, chosen, "failed", (), str(exc))
    return ModelInfo(model_id, chosen, "completed", tuple(model.signals))


@dataclass
class StoreCatalog:
    """:class:`streams.control.Catalog` over the model store and what the worker serves."""

    store: ModelStore
    served: Iterable[str]
    signals_seen: dict[str, set[str]]
    hook_names: Callable[[], Iterable[str]] = lambda: ()
    #: whether the hook names are known (the hooks topic read to its end); until then a
    #: command naming a hook would be refused as naming an unknown one
    hooks_ready: Callable[[], bool] = lambda: True

    def model(self, model_id: str, version: int | None) -> ModelInfo | None:
        return model_info(self.store, model_id, version)

    def topic_exists(self, topic: str) -> bool:
        return topic in set(self.served)

    def topic_signals(self, topic: str) -> frozenset[str] | None:
        seen = self.signals_seen.get(topic)
        return frozenset(seen) if seen else None

    def hook_exists(self, name: str) -> bool:
        return name in set(self.hook_names())


def gap_record(inference_id: str, from_ms: int, to_ms: int, reason: str, at_ms: int,
               asset_id: str | None = None, points: int | None = None) -> dict[str, Any]:
    """A ``gap`` status event: a span not scored, which a replay can fill."""
    return {"kind": "gap", "inference_id": inference_id, "asset_id": asset_id, "from": from_ms,
            "to": to_ms, "points": points, "reason": reason, "at": at_ms}


@dataclass
class ControlTopics:
    #: the public control topic and the internal one, read by the controller as one stream
    control: faust.TopicT
    status: faust.TopicT
    events: faust.TopicT
    stats: faust.TopicT
    #: where workers send internal commands (``fail``)
    internal: faust.TopicT


def register_controller(app: faust.App, settings: Settings, catalog: StoreCatalog,
                        wall_ms: Callable[[], int], desk: ReplayDesk | None = None,
                        metrics: Any = None) -> ControlTopics:
    """Declare the control agent, its table and the status topics on ``app``.

    ``desk``: checks and runs replays (:mod:`agents.replay_desk`); without it a replay is
    rejected. ``metrics``: :class:`agents.metrics.WorkerMetrics`, for replay progress."""
    t = settings.topics

    def raw(*names: str) -> faust.TopicT:
        return app.topic(*names, key_serializer="raw", value_serializer="raw", partitions=1)

    # one stream of both control topics: one partition each, so Faust assigns both (and the
    # table's changelog) to the same worker, which decides in arrival order
    topics = ControlTopics(raw(t.control, t.control_internal), raw(t.inference_status),
                           raw(t.inference_events), raw(t.inference_stats),
                           raw(t.control_internal))
    table = app.Table("control-state", default=None, partitions=1, key_type=str)
    sends = Sends()

    def store(key: str, value: dict[str, Any]) -> None:
        table.data[key] = value
        sends(table.send_changelog(0, key, value))

    def refuse(plain: dict[str, Any], reason: str) -> None:
        """The one result of a command that could not be decided: a rejection with its reason."""
        inference_id = _short(plain.get("inference_id"), "?")
        result = {"kind": "command_result", "command_id": _short(plain.get("command_id"), "invalid"),
                  "inference_id": inference_id, "type": _short(plain.get("type"), "?"),
                  "accepted": False, "reason": reason, "at": wall_ms()}
        sends(topics.events.send_soon(key=inference_id.encode(), value=dumps(result)))

    def record_replay(replay: ReplayState) -> None:
        """A replay's state: kept in the table (one at a time per inference), on the events
        topic for ``inference show`` and scripts, and in the replay progress metric."""
        store(f"replay/{replay.inference_id}", replay.to_record())
        sends(topics.events.send_soon(key=replay.inference_id.encode(),
                                      value=dumps(replay.to_record())))
        if metrics is not None:
            metrics.set_replay(replay)
        level = logging.WARNING if replay.status == "Failed" else logging.INFO
        log.log(level, "replay %s: %s %s%s", replay.replay_id, replay.status, replay.progress,
                f" ({replay.reason})" if replay.reason else "")

    def running_replay(inference_id: str) -> ReplayState | None:
        plain = table.data.get(f"replay/{inference_id}")
        return ReplayState.from_record(plain) if plain else None

    def handle(value: bytes | None, internal: bool) -> None:
        record: Any = None
        try:
            record = loads(value or b"")
            if not isinstance(record, dict):
                raise ValueError("a command is a JSON object")
            cmd = Command.from_record(record)
        except ValueError as exc:
            refuse(record if isinstance(record, dict) else {}, f"invalid command: {exc}")
            return
        seen = table.data.get(f"command/{cmd.command_id}")
        if seen is not None:
            sends(topics.events.send_soon(key=cmd.inference_id.encode(), value=dumps(seen)))
            return
        try:
            plain_state = table.data.get(f"inference/{cmd.inference_id}")
            current = InferenceState.from_record(plain_state) if plain_state else None
            context = None
            if cmd.type == "replay" and desk is not None:
                context = desk.context(current, running_replay(cmd.inference_id))
            decision: Decision = decide(current, cmd, catalog, wall_ms(), internal=internal,
                                        replay=context)
            # encoded before anything is stored or sent: a command that cannot be written
            # down is refused whole, never half applied
            state_out = None if decision.state is None else decision.state.to_record()
            state_bytes = None if state_out is None else dumps(state_out)
            result = decision.result_record()
            result_bytes = dumps(result)
        except Exception as exc:  # a defect must cost this command, not the controller
            log.exception("command %s %s on %s could not be decided", cmd.command_id, cmd.type,
                          cmd.inference_id)
            refuse(cmd.to_record(), f"command could not be decided: {type(exc).__name__}: {exc}"[:500])
            return
        if state_out is not None and state_bytes is not None:
            store(f"inference/{cmd.inference_id}", state_out)
            sends(topics.status.send_soon(key=cmd.inference_id.encode(), value=state_bytes))
        store(f"command/{cmd.command_id}", result)
        sends(topics.events.send_soon(key=cmd.inference_id.encode(), value=result_bytes))
        if decision.gap is not None:
            gap = gap_record(cmd.inference_id, *decision.gap, reason="paused", at_ms=decision.at_ms)
            sends(topics.events.send_soon(key=cmd.inference_id.encode(), value=dumps(gap)))
        level = logging.INFO if decision.accepted else logging.WARNING
        log.log(level, "command %s %s on %s: %s", cmd.command_id, cmd.type, cmd.inference_id,
                decision.reason)
        if decision.replay is not None and desk is not None:
            record_replay(decision.replay)
            desk.start(decision.replay, record_replay)

    @app.agent(topics.control, name="control")
    async def control(stream: faust.StreamT) -> None:
        async for event in stream.events():
            while not catalog.hooks_ready():
                await asyncio.sleep(0.05)  # polling a condition: the hooks topic read
            handle(event.message.value, internal=event.message.topic == t.control_internal)
            await sends.confirmed()  # state and results out before the ack

    @app.timer(2.0)
    async def sweep_replays() -> None:
        """An unfinished replay this worker is not running (its worker stopped mid-replay) is
        marked Failed with the reason: never Running for ever."""
        if desk is None or not cast(Any, app.tables).recovery.completed.is_set():
            return
        found = {k: ReplayState.from_record(v) for k, v in list(table.data.items())
                 if k.startswith("replay/") and v}
        for replay in desk.abandoned(found):
            record_replay(replay)
        await sends.confirmed()

    return topics


#: How long a pre-fill waits for its partition's first live record (where the history read
#: ends) before it ends at the checkpoint or the group's committed offset instead.
LIVE_WAIT_MS = 5_000


def prefill_from_ms(scorer: AssetScorer) -> int:
    """The earliest event time a new epoch's windows need: a window and a fill run before the
    start, and the delay offset."""
    return scorer.history_from_ms(scorer.inference.start_ms)


@dataclass
class InferenceSync:
    """Keeps this worker's engine in step with the status topic; see the module docstring."""

    settings: Settings
    engine: Engine
    store: ModelStore
    view: TopicView[InferenceState]
    kafka: KafkaConnection
    publish: Publish
    table: Any  # the asset-state table: pre-fill markers live beside the snapshots
    topics: ControlTopics
    wall_ms: Callable[[], int]
    recovered: Callable[[], bool]
    assigned: Callable[[], set[int]]
    declared: frozenset[str] = frozenset()
    metrics: Any = None  # agents.metrics.WorkerMetrics: inference status
    worker_id: str = field(default_factory=lambda: socket.gethostname())
    seen_version: int = -1
    models: dict[tuple[str, int | None, int], Model] = field(default_factory=dict)
    checks: set[tuple[str, int, int]] = field(default_factory=set)
    #: per check, each topic's live position when the epoch started there (None: not read yet)
    until: dict[tuple[str, int, int], dict[str, int | None]] = field(default_factory=dict)
    jobs: dict[tuple[str, int, int], Future[list[Message]]] = field(default_factory=dict)
    #: per check still waiting for its partition's first live record, since when (wall ms)
    waiting: dict[tuple[str, int, int], int] = field(default_factory=dict)
    failures: Counter[tuple[str, int]] = field(default_factory=Counter)
    reported: set[tuple[str, int]] = field(default_factory=set)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    last_stats_ms: int = 0
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, "prefill"))

    @property
    def applied(self) -> bool:
        """The status topic was read to its end and applied: scoring may start."""
        return self.view.caught_up.is_set() and self.seen_version == self.view.version

    @property
    def ready(self) -> bool:
        """:attr:`applied`, and every declared inference is known (accepted or not)."""
        return self.applied and self.declared <= set(self.view.items())

    def step(self) -> None:
        """One turn of the timer: follow the status topic, run pre-fills, report, publish stats."""
        if self.view.version != self.seen_version:
            self.reconcile()
        self._start_prefills()
        self._finish_prefills()
        now = self.wall_ms()
        if now - self.last_stats_ms >= self.settings.stats_interval_s * 1000:
            self.last_stats_ms = now
            self._publish_stats(now)

    def reconcile(self) -> None:
        self.seen_version = self.view.version
        served = set(self.engine.served)
        scorers = []
        for state in self.view.items().values():
            if self.metrics is not None:
                self.metrics.set_inference_status(state.inference_id, state.status)
            cfg = state.config
            if not state.active or cfg.topic not in served:
                continue
            # loaded afresh at each activation: a restart re-checks the artifact's hash
            key = (cfg.model_id, cfg.model_version, state.epoch)
            try:
                model = self.models.get(key) or self.store.load(cfg.model_id, cfg.model_version)
            except ModelStoreError as exc:
                self._report(state.inference_id, state.epoch, f"model unusable: {exc}")
                continue
            self.models[key] = model
            scorers.append(AssetScorer(cfg, model, state.epoch))
        for scorer in self.engine.set_scorers(scorers):
            self.counts.pop(scorer.inference.inference_id, None)
            self._start_epoch(scorer, self.assigned())

    def on_assigned(self, partitions: set[int]) -> None:
        for scorer in self.engine.scorers:
            self._start_epoch(scorer, partitions)

    def on_revoked(self, partitions: set[int]) -> None:
        self.checks = {c for c in self.checks if c[2] not in partitions}
        self.waiting = {c: t for c, t in self.waiting.items() if c[2] not in partitions}
        for key in [k for k in self.jobs if k[2] in partitions]:
            self.jobs.pop(key).cancel()

    def _start_epoch(self, scorer: AssetScorer, partitions: Iterable[int]) -> None:
        """Hold the epoch's slots on these partitions, and note where the live stream stands:
        the pre-fill reads the history before it, the live stream the rest."""
        parts = set(partitions)
        inference_id = scorer.inference.inference_id
        self.engine.hold(inference_id, parts)
        topic = scorer.inference.topic
        for p in parts:
            check = (inference_id, scorer.epoch, p)
            self.checks.add(check)
            self.until[check] = {t: self.engine.positions.get((t, p))
                                 for t in (topic, by_asset_topic(topic))}

    def _live_start(self, topic: str, partition: int) -> int | None:
        """The first offset the live stream delivered on this worker (read from a thread: a
        dict lookup)."""
        return self.engine.first_offsets.get((topic, partition))

    def _checkpoint(self, topic: str, partition: int) -> int | None:
        """How far the stored state reaches into a partition (read from a thread: a dict
        lookup)."""
        value: int | None = self.table.data.get(checkpoint_key(topic, partition))
        return value

    def _scorer(self, inference_id: str, epoch: int) -> AssetScorer | None:
        scorer = self.engine.scorer(inference_id)
        return scorer if scorer is not None and scorer.epoch == epoch else None

    def _start_prefills(self) -> None:
        """Start the pre-fill of each check whose end is known: where the live stream began,
        or, after :data:`LIVE_WAIT_MS` without a live record, the checkpoint or the group's
        offset. Waiting here, not in the reading thread, lets a busy partition's pre-fill start
        while a quiet one still waits."""
        if not self.checks or not self.recovered():
            return
        now = self.wall_ms()
        for check in sorted(self.checks):
            inference_id, epoch, partition = check
            scorer = self._scorer(inference_id, epoch)
            if scorer is None or partition not in self.assigned():
                self._done_waiting(check)
                continue
            if self.table.data.get(_marker(check)) is not None:
                self._done_waiting(check)
                self.engine.release(inference_id, partition)
                continue
            topic = scorer.inference.topic
            live = self.until.get(check, {}).get(topic) is not None or \
                self._live_start(topic, partition) is not None
            if not live and now - self.waiting.setdefault(check, now) < LIVE_WAIT_MS:
                continue
            self._done_waiting(check)
            self.jobs[check] = self.pool.submit(
                read_history, self.kafka, [topic, by_asset_topic(topic)], partition,
                prefill_from_ms(scorer), self.until.get(check, {}), self.settings.app_id,
                live_start=partial(self._live_start, partition=partition),
                checkpoint=partial(self._checkpoint, partition=partition))

    def _done_waiting(self, check: tuple[str, int, int]) -> None:
        self.checks.discard(check)
        self.waiting.pop(check, None)

    def _finish_prefills(self) -> None:
        for check in [k for k, f in self.jobs.items() if f.done()]:
            future = self.jobs.pop(check)
            inference_id, epoch, partition = check
            scorer = self._scorer(inference_id, epoch)
            if scorer is None or partition not in self.assigned():
                continue
            try:
                messages = future.result()
            except Exception as exc:  # the broker hiccupped: try again on the next turn
                log.warning("pre-fill of %s partition %d failed (%s); retrying", inference_id,
                            partition, exc)
                self.checks.add(check)
                continue
            out = self.engine.prefill_messages(inference_id, partition, messages,
                                               prefill_from_ms(scorer))
            log.info("pre-fill of %s epoch %d partition %d: %d records (%s), %d points taken",
                     inference_id, epoch, partition, len(messages), _spans(messages),
                     out.counts["prefilled"])
            self.publish(out)
            self.until.pop(check, None)
            marker = {"done_at": self.wall_ms(), "records": len(messages)}
            self.table.data[_marker(check)] = marker
            self.table.send_changelog(partition, _marker(check), marker)
            self.engine.release(inference_id, partition)

    def observe(self, out: BatchOutput) -> None:
        """Count what a batch did per inference; put its data gaps on the events topic; report
        an inference that keeps failing."""
        for (inference_id, outcome), n in out.by_inference.items():
            self.counts.setdefault(inference_id, Counter())[outcome] += n
        if out.gaps:
            now = self.wall_ms()
            for _, inference_id, key, gap in out.gaps:
                asset_id = key.split("/", 1)[1]  # streams.engine.state_key
                record = gap_record(inference_id, gap.from_ms, gap.to_ms, "missing data", now,
                                    asset_id=asset_id, points=gap.points)
                self.topics.events.send_soon(key=inference_id.encode(), value=dumps(record))
        for _, inference_id, key, signals, adoption in out.adoptions:
            record = adoption.record(inference_id, key.split("/", 1)[1], signals, self.wall_ms())
            self.topics.events.send_soon(key=inference_id.encode(), value=dumps(record))
        for _, anomaly in out.anomalies:
            self.counts.setdefault(anomaly.inference_id, Counter())["anomalies"] += 1
        for inference_id, error in out.failures.items():
            scorer = self.engine.scorer(inference_id)
            epoch = scorer.epoch if scorer is not None else 0
            self.failures[(inference_id, epoch)] += 1
            log.error("inference %s failed: %s", inference_id, error)
            if self.failures[(inference_id, epoch)] >= self.settings.max_inference_failures:
                self._report(inference_id, epoch, f"failed {self.failures[(inference_id, epoch)]} "
                             f"times; last error: {error}")

    def _report(self, inference_id: str, epoch: int, error: str) -> None:
        """Ask the controller to move the inference to SystemPaused (once per epoch)."""
        if (inference_id, epoch) in self.reported:
            return
        self.reported.add((inference_id, epoch))
        cmd = Command(f"fail/{inference_id}/{epoch}", "fail", inference_id, {"error": error},
                      self.wall_ms(), f"worker:{self.worker_id}")
        self.topics.internal.send_soon(key=inference_id.encode(), value=dumps(cmd.to_record()))

    def _publish_stats(self, now_ms: int) -> None:
        progress = self.engine.progress()
        for scorer in self.engine.scorers:
            inference_id = scorer.inference.inference_id
            p = progress.get(inference_id)
            counts = self.counts.get(inference_id, Counter())
            last = p.last_finalised_ms if p is not None else None
            due = None if last is None else scorer.slots.due_at_ms(last)
            record = {
                "inference_id": inference_id, "worker": self.worker_id, "epoch": scorer.epoch,
                "assets": p.assets if p else 0, "warming_up": p.warming_up if p else 0,
                "last_finalised": last,
                "watermark_lag_ms": None if due is None or scorer.inference.clock != "wall"
                else max(0, now_ms - due),
                "points_scored": counts["scored"], "anomalies": counts["anomalies"],
                "late": counts["late"], "filled": counts["filled"], "gaps": counts["gap"],
                "prefilling": sorted(p_ for i, p_ in self.engine.held if i == inference_id),
                "at": now_ms,
            }
            self.topics.stats.send_soon(key=f"{inference_id}/{self.worker_id}".encode(),
                                        value=dumps(record))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.view.close()


def _short(value: Any, default: str) -> str:
    """A field of a refused command, as its result echoes it: a short string."""
    return default if value is None or value == "" else str(value)[:256]


def _spans(messages: Sequence[Message]) -> str:
    """The offsets read per topic, for a log line: ``topic 0–41``."""
    spans: dict[str, list[int]] = {}
    for m in messages:
        span = spans.setdefault(m.topic, [m.offset, m.offset])
        span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
    return ", ".join(f"{t} {a}–{b}" for t, (a, b) in spans.items()) or "none"


def _marker(check: tuple[str, int, int]) -> str:
    inference_id, epoch, partition = check
    return f"#prefill/{inference_id}/{epoch}/{partition}"
