"""The controller (SPEC §5.4; docs/control.md): a Faust agent on the one-partition control
topic, so exactly one worker of the group decides, in topic order.

Its table (``control-state``, changelog-backed) holds every inference's state, every
command's result, each inference's latest replay and its queue of late ranges to re-score
(:class:`streams.late_rescore.RescoreQueue`, started one at a time by the controller's sweep).
It applies :func:`streams.control.decide` and publishes the new state (compacted status topic,
keyed by inference id), the result and any gap (event log). A command id seen before gets its
first result again, for a week and among the newest 100,000 (:mod:`streams.command_ids`; older
ids are pruned every minute). Replays are checked and run by
:class:`agents.replay_desk.ReplayDesk`. Every worker follows the decisions with
:class:`agents.inference_sync.InferenceSync`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import faust

from agents.model_store import ModelStore, ModelStoreError
from agents.replay_desk import ReplayDesk
from agents.send_buffer import Sends
from agents.settings import Settings
from streams.codec import dumps, loads
from streams.command_ids import forgotten_commands
from streams.control import Command, Decision, InferenceState, ModelInfo, decide
from streams.late_rescore import RescoreQueue
from streams.replay import ReplayState, check_range, replay_id_of

log = logging.getLogger(__name__)

#: How often the controller forgets command ids past their retention.
PRUNE_EVERY_MS = 60_000


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

    def inference_state(inference_id: str) -> InferenceState | None:
        plain = table.data.get(f"inference/{inference_id}")
        return InferenceState.from_record(plain) if plain else None

    def queue_late(decision: Decision) -> None:
        """A worker's late ranges, merged into the inference's queue (no command result: the
        requests are the workers' own, and their replays report on the events topic)."""
        key = f"late/{decision.command.inference_id}"
        plain = table.data.get(key)
        queue = RescoreQueue.from_record(plain) if plain else None
        if queue is None or queue.interval_ms != decision.late_interval_ms:
            queue = RescoreQueue(decision.late_interval_ms)
        queue = queue.add(decision.late)
        store(key, queue.to_record())

    def requeue_late(replay: ReplayState) -> None:
        """An abandoned automatic replay's range, back in its inference's queue (the queue
        exists: it was stored before the replay started; without it the inference stopped
        re-scoring late data, and there is nothing to queue into)."""
        key = f"late/{replay.inference_id}"
        plain = table.data.get(key)
        if replay.origin != "late" or not plain:
            return
        store(key, RescoreQueue.from_record(plain).retry(replay).to_record())
        log.info("late re-score %s queued again after its worker stopped", replay.replay_id)

    def start_late_rescores() -> None:
        """Start the next late range of each inference whose turn has come."""
        assert desk is not None
        for key, plain in list(table.data.items()):
            if not key.startswith("late/") or not plain or not plain.get("pending"):
                continue
            inference_id = key.removeprefix("late/")
            queue = RescoreQueue.from_record(plain)
            state = inference_state(inference_id)
            if state is None or state.status != "Active" or not state.config.rescore_late:
                store(key, RescoreQueue(queue.interval_ms, dropped=queue.dropped).to_record())
                continue
            running = running_replay(inference_id)
            context = desk.context(state, running)
            if context is None or context.interval_ms != queue.interval_ms:
                continue
            busy = running is not None and not running.finished
            now = wall_ms()
            chosen, rest = queue.next(now, context.finalised_ms, busy)
            if chosen is None:
                continue
            store(key, rest.to_record())
            try:
                total = check_range(chosen.start_ms, chosen.end_ms, context.interval_ms,
                                    context.finalised_ms)
            except ValueError as exc:  # cannot happen for a queued range; dropped, said why
                log.warning("late range of %s dropped: %s", inference_id, exc)
                continue
            replay = ReplayState.accepted(
                replay_id_of(inference_id, chosen.start_ms, chosen.end_ms, chosen.assets),
                inference_id, chosen.start_ms, chosen.end_ms, total, now,
                assets=chosen.assets, origin="late")
            record_replay(replay)
            desk.start(replay, record_replay)

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
        if cmd.type == "rescore_late":
            late = decide(inference_state(cmd.inference_id), cmd, catalog, wall_ms(),
                          internal=internal)
            if late.accepted:
                queue_late(late)
            else:
                log.info("late re-score request %s not queued: %s", cmd.command_id, late.reason)
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

    pruned_at = [0]

    @app.timer(2.0)
    async def sweep() -> None:
        """The controller's housekeeping: an unfinished replay this worker is not running (its
        worker stopped mid-replay) is marked Failed with the reason, never Running for ever;
        the next late range whose turn has come is started; command ids past their retention
        are forgotten (on the first sweep after recovery, then every minute)."""
        if not cast(Any, app.tables).recovery.completed.is_set():
            return
        if desk is not None:
            found = {k: ReplayState.from_record(v) for k, v in list(table.data.items())
                     if k.startswith("replay/") and v}
            for replay in desk.abandoned(found):
                record_replay(replay)
                requeue_late(replay)
            start_late_rescores()
        if wall_ms() - pruned_at[0] >= PRUNE_EVERY_MS:
            forget_old_commands()
        await sends.confirmed()

    def forget_old_commands() -> None:
        """Command ids past their retention leave the table and its changelog."""
        pruned_at[0] = wall_ms()
        gone = forgotten_commands(table.data, wall_ms())
        for key in gone:
            table.data.pop(key, None)
            sends(table.send_changelog(0, key, None, value_serializer="raw"))
        if gone:
            log.info("forgot %d command id(s) past their retention", len(gone))

    return topics


def _short(value: Any, default: str) -> str:
    """A field of a refused command, as its result echoes it: a short string."""
    return default if value is None or value == "" else str(value)[:256]
