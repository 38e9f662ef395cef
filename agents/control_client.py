"""Talking to the control plane from outside a worker: the CLI, the REST API, tests.

:meth:`ControlClient.send` puts a command on the control topic and waits for its result on
the event log; :meth:`ControlClient.states` and :meth:`ControlClient.stats` read the status
and progress topics (compacted: one record per inference or worker) whole, and
:meth:`ControlClient.events` the event log's newest :data:`EVENTS_TAIL` records.
:func:`describe` turns a state and its progress into the text
``assetwatch inference show`` prints.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from agents.connection import KafkaConnection
from agents.kafka_io import make_producer, reader_consumer
from agents.settings import Settings
from streams.codec import dumps, loads
from streams.control import Command, CommandType, InferenceState

#: How many of the event log's newest records ``events()`` reads (issue 16 item 5): the
#: recent history ``inference show`` lists, bounded whatever the log's age.
EVENTS_TAIL = 20_000


class ControlTimeoutError(TimeoutError):
    """No worker answered a command in time."""


class ControlClient:
    """Commands and reads against one deployment's control topics."""

    def __init__(self, kafka: KafkaConnection, settings: Settings, issued_by: str = "cli") -> None:
        self.kafka = kafka
        self.topics = settings.topics
        self.issued_by = issued_by

    def command(self, type_: CommandType, inference_id: str,
                params: Mapping[str, Any] | None = None) -> Command:
        return Command(f"{type_}-{uuid.uuid4().hex[:16]}", type_, inference_id, dict(params or {}),
                       time.time_ns() // 1_000_000, self.issued_by)

    def send(self, cmd: Command, timeout_s: float = 30.0) -> dict[str, Any]:
        """Send ``cmd`` and return its ``command_result`` record (accepted or rejected)."""
        consumer = self._consumer()
        try:
            tp = TopicPartition(self.topics.inference_events, 0)
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            consumer.assign([TopicPartition(tp.topic, 0, high)])
            producer = make_producer(self.kafka)
            producer.produce(self.topics.control, key=cmd.inference_id.encode(),
                             value=dumps(cmd.to_record()))
            if producer.flush(10) != 0:
                raise ControlTimeoutError("could not send the command to the control topic")
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for m in consumer.consume(num_messages=100, timeout=0.2):
                    value = m.value()
                    if m.error() is not None or value is None:
                        continue
                    record = loads(value)
                    if record.get("kind") == "command_result" and \
                            record.get("command_id") == cmd.command_id:
                        return dict(record)
            raise ControlTimeoutError(f"no answer to command {cmd.command_id} within {timeout_s:.0f} s: "
                                 "is a worker running against this broker?")
        finally:
            consumer.close()

    def states(self) -> dict[str, InferenceState]:
        """Every inference's latest state (Deleted ones included)."""
        out: dict[str, InferenceState] = {}
        for key, value in self._read_all(self.topics.inference_status):
            if value is None:
                out.pop(key, None)
            else:
                out[key] = InferenceState.from_record(loads(value))
        return out

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each worker's latest progress record, keyed ``inference/worker``."""
        return {k: loads(v) for k, v in self._read_all(self.topics.inference_stats) if v is not None}

    def events(self, inference_id: str | None = None) -> list[dict[str, Any]]:
        """The recent event log (command results, gaps, replays), oldest first: its last
        :data:`EVENTS_TAIL` records, so a long-lived deployment's log is not read whole on
        every ``inference show``."""
        records = [loads(v) for _, v in self._read_all(self.topics.inference_events,
                                                       last=EVENTS_TAIL) if v]
        return [r for r in records if inference_id is None or r.get("inference_id") == inference_id]

    def wait_replay(self, inference_id: str, replay_id: str, timeout_s: float = 30.0,
                    since_ms: int = 0) -> dict[str, Any]:
        """Wait for a replay to end; its last record (Succeeded or Failed). ``since_ms``: the
        time the replay was accepted (its command result's ``at``), so that an earlier run of
        the same range (the same id) is not taken for this one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for r in latest_replays(self.events(inference_id)):
                if (r["replay_id"] == replay_id and r["status"] in ("Succeeded", "Failed")
                        and int(r.get("updated_at", 0)) >= since_ms):
                    return r
            time.sleep(0.2)  # polling the event log, within the deadline
        raise ControlTimeoutError(f"replay {replay_id} did not end within {timeout_s:.0f} s")

    def _consumer(self) -> Consumer:
        return reader_consumer(self.kafka, "control")

    def _read_all(self, topic: str, timeout_s: float = 20.0,
                  last: int | None = None) -> list[tuple[str, bytes | None]]:
        """Every record of the one-partition ``topic`` (its ``last`` ones, if given)."""
        consumer = self._consumer()
        try:
            tp = TopicPartition(topic, 0)
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high <= low:
                return []
            start = OFFSET_BEGINNING if last is None or high - last <= low else high - last
            consumer.assign([TopicPartition(topic, 0, start)])
            out: list[tuple[str, bytes | None]] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for m in consumer.consume(num_messages=1000, timeout=0.2):
                    if m.error() is not None:
                        continue
                    key = m.key()
                    if key is not None:
                        out.append((key.decode(), m.value()))
                    if (m.offset() or 0) >= high - 1:
                        return out
            raise ControlTimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
        finally:
            consumer.close()


def aggregate(inference: InferenceState, stats: Mapping[str, Mapping[str, Any]],
              now_ms: int, live_within_ms: int = 30_000) -> dict[str, Any]:
    """One inference's progress over the workers that report it in its current epoch.

    Counters add up over every worker's record of the epoch (a restarted worker reports anew);
    assets and warm-up count only workers heard from within ``live_within_ms``.

    >>> from streams.inference import InferenceConfig
    >>> s = InferenceState(InferenceConfig("i", "m", "t"), "Active", 2, 0, 0, 0)
    >>> rows = {"i/a": {"inference_id": "i", "epoch": 2, "assets": 3, "warming_up": 1,
    ...                 "points_scored": 10, "anomalies": 1, "late": 0, "filled": 0, "gaps": 0,
    ...                 "last_finalised": 500, "watermark_lag_ms": 40, "at": 1000},
    ...         "i/b": {"inference_id": "i", "epoch": 1, "points_scored": 99, "at": 1000}}
    >>> agg = aggregate(s, rows, now_ms=2000)
    >>> agg["points_scored"], agg["assets"], agg["last_finalised"], agg["workers"]
    (10, 3, 500, 1)
    """
    rows = [r for r in stats.values()
            if r.get("inference_id") == inference.inference_id and r.get("epoch") == inference.epoch]
    live = [r for r in rows if now_ms - int(r.get("at", 0)) <= live_within_ms]
    finalised = [r["last_finalised"] for r in rows if r.get("last_finalised") is not None]
    lags = [r["watermark_lag_ms"] for r in live if r.get("watermark_lag_ms") is not None]
    return {
        "workers": len(live),
        "assets": sum(int(r.get("assets", 0)) for r in live),
        "warming_up": sum(int(r.get("warming_up", 0)) for r in live),
        "points_scored": sum(int(r.get("points_scored", 0)) for r in rows),
        "anomalies": sum(int(r.get("anomalies", 0)) for r in rows),
        "late": sum(int(r.get("late", 0)) for r in rows),
        "filled": sum(int(r.get("filled", 0)) for r in rows),
        "gaps": sum(int(r.get("gaps", 0)) for r in rows),
        "last_finalised": max(finalised, default=None),
        "watermark_lag_ms": max(lags, default=None),
        "prefilling": sorted({p for r in live for p in r.get("prefilling", [])}),
    }


def latest_replays(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each replay's latest record in the event log, in the order replays were first seen.

    >>> ev = [{"kind": "replay", "replay_id": "r1", "status": "Accepted"},
    ...       {"kind": "gap"}, {"kind": "replay", "replay_id": "r1", "status": "Succeeded"}]
    >>> [r["status"] for r in latest_replays(ev)]
    ['Succeeded']
    """
    latest: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("kind") == "replay" and isinstance(e.get("replay_id"), str):
            latest[e["replay_id"]] = dict(e)
    return list(latest.values())


def _ts(ms: int | None) -> str:
    if ms is None:
        return "—"
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    except (ValueError, OverflowError, OSError):  # a state written before the bounds existed
        return f"{ms} ms"


def describe(state: InferenceState, progress: Mapping[str, Any],
             events: Sequence[Mapping[str, Any]] = ()) -> str:
    """The readable form ``inference show`` prints.

    >>> from streams.inference import InferenceConfig
    >>> s = InferenceState(InferenceConfig("line-3", "pumps", "tele", model_version=2),
    ...                    "SystemPaused", 1, 0, 0, 0, error="boom")
    >>> print(describe(s, {"points_scored": 5, "anomalies": 1}).splitlines()[0])
    line-3  SystemPaused  (epoch 1)
    """
    cfg = state.config
    lag = progress.get("watermark_lag_ms")
    lines = [
        f"{state.inference_id}  {state.status}  (epoch {state.epoch})",
        f"  error:            {state.error}" if state.error else None,
        f"  model:            {cfg.model_id} v{cfg.model_version}",
        f"  topic:            {cfg.topic}" + (f"  (assets: {', '.join(sorted(cfg.assets))})"
                                              if cfg.assets else ""),
        f"  clock:            {cfg.clock}, delay offset {cfg.delay_ms / 1000:g} s, "
        f"sensitivity {cfg.sensitivity}",
        f"  scoring from:     {_ts(state.active_from_ms)}",
        f"  last finalised:   {_ts(progress.get('last_finalised'))}",
        f"  watermark lag:    {'—' if lag is None else f'{lag / 1000:.1f} s'}",
        f"  points scored:    {progress.get('points_scored', 0)}   anomalies: "
        f"{progress.get('anomalies', 0)}   late: {progress.get('late', 0)}   "
        f"filled: {progress.get('filled', 0)}",
        f"  assets:           {progress.get('assets', 0)} ({progress.get('warming_up', 0)} warming up)"
        f" on {progress.get('workers', 0)} worker(s)",
        f"  pre-filling:      partitions {progress['prefilling']}" if progress.get("prefilling")
        else None,
        f"  alerts:           {', '.join(a.name for a in cfg.alerts)}" if cfg.alerts else None,
        f"  hooks:            {', '.join(cfg.hooks)}" if cfg.hooks else None,
        "  late data:        re-scored automatically" if cfg.rescore_late else None,
        f"  paused since:     {_ts(state.paused_at_ms)}" if state.paused_at_ms else None,
    ]
    for r in latest_replays(events)[-3:]:
        origin = " (late data, automatic)" if r.get("origin") == "late" else ""
        lines.append(f"  replay {r['replay_id']}{origin}: {r['status']} {r.get('done')}/"
                     f"{r.get('total')} points" + (f" ({r['reason']})" if r.get("reason") else ""))
    for e in list(events)[-5:]:
        if e.get("kind") == "command_result":
            verdict = "accepted" if e.get("accepted") else "REJECTED"
            lines.append(f"  {_ts(e.get('at'))}  {e.get('type')} {verdict}: {e.get('reason')}")
        elif e.get("kind") == "gap":
            lines.append(f"  {_ts(e.get('at'))}  gap {_ts(e.get('from'))} → {_ts(e.get('to'))}: "
                         f"{e.get('reason')}")
    return "\n".join(line for line in lines if line is not None)
