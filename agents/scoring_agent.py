"""The scoring agent: telemetry batches → :class:`streams.engine.Engine` → anomalies, dead letters,
state snapshots.

The scoring loop takes the telemetry topics' records a whole fetch at a time
(:mod:`agents.bulk_intake`, not one Faust event each) and is synchronous from a batch's
scoring to its last send (every send is ``send_soon``), so a stop cannot cut a batch in half.
A batch's records are acked (:mod:`agents.ack_pipeline`) only once the broker has acknowledged
every record it sent (:mod:`agents.send_buffer`), while the next batch is already scored; only
then can Faust commit their offsets. So state and outputs are always written before the input
offsets that produced them are committed (at-least-once); re-delivered points are recognised
by timestamp and not scored twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, cast

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agents.ack_pipeline import AckPipeline
from agents.bulk_intake import BulkIntake, ack_records, chunks
from agents.faust_consumer import FetchWaitApp
from agents.holes import HoleGuard, ReadOffsets, message_of
from agents.log_ends import report_log_ends, report_starts
from agents.metrics import WorkerMetrics
from agents.send_buffer import Sends
from agents.settings import Settings
from agents.uncommitted import Uncommitted
from streams.alert_codec import encode_alert
from streams.codec import encode_anomaly, encode_dead_letter, encode_late, encode_telemetry
from streams.correlation import encode_feed
from streams.engine import BatchOutput, Engine, Message
from streams.notification import encode_notification

log = logging.getLogger(__name__)


def wall_ms() -> int:
    """The wall clock, read here in the glue and handed to the pure core."""
    return time.time_ns() // 1_000_000


def record_time(event_ms: int, now_ms: int) -> float:
    """The Kafka timestamp (Faust's seconds) of an output record: the event time of what it
    describes, or the publication time if that is earlier (a feed ahead of the wall clock:
    stock brokers refuse timestamps too far ahead, ``message.timestamp.after.max.ms``).

    Half a millisecond on top: Faust sends ``int(seconds * 1000)``, which a float's rounding
    could otherwise put a millisecond early (docs/configuration.md, "Record timestamps").

    >>> int(record_time(1_767_225_600_123, 1_800_000_000_000) * 1000.0)
    1767225600123
    >>> int(record_time(1_900_000_000_000, 1_800_000_000_000) * 1000.0)
    1800000000000
    """
    return (min(event_ms, now_ms) + 0.5) / 1000.0


@dataclass
class PipelineStats:
    """Running totals the worker reports on its status page."""

    counts: Counter[str] = field(default_factory=Counter)
    assigned: set[int] = field(default_factory=set)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    #: called with every batch's or tick's output once it is published (the control sync),
    #: and the sends it belongs with: what a listener sends through them is acknowledged by
    #: the broker before the batch's input is committed
    listeners: list[Callable[[BatchOutput, Sends], None]] = field(default_factory=list)
    #: all must hold before the worker reports itself ready
    ready_checks: list[Callable[[], bool]] = field(default_factory=list)
    #: all must hold before the agent scores a batch (the inferences are known)
    scoring_checks: list[Callable[[], bool]] = field(default_factory=list)


#: Records held for the next store of states at most, in batches (besides the interval)
UNCOMMITTED_BATCHES = 20

#: Stored states adopted per tick after a rebalance (about 80 µs each; docs/state-and-recovery.md)
ADOPT_PER_TICK = 2_000


@dataclass
class Adoption:
    """Whether the stored states of newly assigned partitions are still to be adopted
    (:meth:`streams.engine.Engine.adopt`): set when Faust has recovered the table after a
    rebalance, done by the next tick once the inferences are known."""

    due: bool = False
    #: the table keys still to hand to the engine
    keys: list[str] = field(default_factory=list)

    def take(self, most: int = ADOPT_PER_TICK) -> list[str]:
        """The next ``most`` keys to adopt (taken off the list).

        >>> a = Adoption(keys=["a", "b", "c"]); a.take(2), a.keys
        (['a', 'b'], ['c'])
        """
        out, self.keys = self.keys[:most], self.keys[most:]
        return out


class Publish(Protocol):
    """Sends a batch's output; the sends are kept in ``into`` (default: the scoring agent's)."""

    def __call__(self, out: BatchOutput, into: Sends | None = None) -> None: ...


@dataclass(frozen=True)
class ScoringHandles:
    """What other parts of the worker need of the scoring agent."""

    publish: Publish
    table: Any
    metrics: WorkerMetrics
    #: every record sent so far and not yet acknowledged by the broker
    unacknowledged: Callable[[], list[Any]]


def register_scoring_agent(
    app: faust.App, settings: Settings, engine: Engine, stats: PipelineStats,
    read_offsets: ReadOffsets,
) -> ScoringHandles:
    """Declare the state table, the output topics and the scoring agent on ``app``.

    ``read_offsets`` reads back the records the live stream skipped (:mod:`agents.holes`)."""
    table = app.Table(
        "asset-state",
        default=None,
        partitions=settings.partitions,
        key_type=str,  # keys and values both travel as JSON
    )
    def raw_topic(*names: str) -> faust.TopicT:
        """Bytes in, bytes out: the codec is ours (streams/codec.py), not Faust's."""
        return app.topic(*names, key_serializer="raw", value_serializer="raw",
                         partitions=settings.partitions)

    t = settings.topics
    anomalies, dead_letter, late = raw_topic(t.anomalies), raw_topic(t.dead_letter), raw_topic(t.late)
    alerts, notifications = raw_topic(t.alerts), raw_topic(t.notifications)
    correlation = raw_topic(t.correlation)
    source = raw_topic(*engine.topics)
    by_asset = {name: raw_topic(name) for name in engine.topics if name not in engine.source_topics}

    def load(key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = table.data.get(key)
        return value

    engine.load = load
    metrics = WorkerMetrics(stats.registry)
    #: what ticks, the controller and checkpoints send; and what scored batches send, awaited
    #: (with those) before the batches' records are acked
    sends, batch_sends = Sends(), Sends()
    # states are stored on a cadence, their batches' records acked with them (agents/uncommitted.py)
    engine.defer_snapshots = True
    uncommitted = Uncommitted(settings.snapshot_interval_ms / 1000,
                              most=UNCOMMITTED_BATCHES * settings.batch_max_events)
    # a commit must not overtake a batch's records: they are acked once the broker has what
    # they caused, while the next batches are scored
    # (the consumer looked up at the first ack: Faust builds it when it starts, not here)
    acks = AckPipeline(lambda records: ack_records(app.consumer, records),
                       on_failure=lambda exc: asyncio.ensure_future(app.crash(exc)),
                       depth=settings.ack_pipeline_depth)

    def hole_read(topic: str, records: int) -> None:
        stats.counts["hole_records"] += records
        metrics.hole_records.labels(topic).inc(records)

    holes = HoleGuard(table, read_offsets, hole_read)
    adoption = Adoption()

    # the source topics' records come in whole fetches (agents/bulk_intake.py), not as
    # Faust events: registered with the conductor, so the consumer subscribes to them
    intake = BulkIntake(engine.topics, depth=settings.ack_pipeline_depth)
    cast(FetchWaitApp, app).bulk_intake = intake
    app.topics.add(source)

    @app.task
    async def score() -> None:
        """Take each fetch, score it, and ack its records once what it caused is durable."""
        try:
            while True:
                fetched = await intake.take(cast(Any, app))
                # score nothing until the worker knows its inferences (the status topic read
                # and applied): a point taken before that would be dropped for want of a scorer
                while not all(check() for check in stats.scoring_checks):
                    await asyncio.sleep(0.05)
                for records in chunks(fetched, settings.batch_max_events):
                    messages = await holes.fill([message_of(r) for r in records])
                    handle(messages)
                    uncommitted.add(records, messages, time.monotonic())
                    if uncommitted.due(time.monotonic()):
                        await store_states()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker stops; its unacked input is delivered again
            log.exception("the scoring loop failed")
            await app.crash(exc)
        finally:
            acks.stop()

    async def store_states() -> None:
        """Store the states the held batches changed; ack their records once the broker has
        those and everything else they caused."""
        records, messages = uncommitted.take()
        if not records:
            return
        publish(BatchOutput(snapshots=engine.take_snapshots()), into=batch_sends)
        await acks.put(records, batch_sends.take() + sends.take(), after=partial(
            # only now does the stored state surely hold them
            holes.checkpoint, messages, batch_sends))

    def handle(messages: list[Message]) -> None:
        started = time.perf_counter()
        started_ms = wall_ms()
        report_log_ends(app.consumer, engine.topics, engine.arrival, started_ms)
        out = engine.process_batch(messages, now_ms=started_ms)
        publish(out, into=batch_sends)
        metrics.observe(out, wall_ms(), time.perf_counter() - started,
                        engine=engine, finalised_at_ms=started_ms)
        metrics.messages.labels("taken").inc(len(messages))

    @app.timer(settings.tick_interval_s)
    async def tick() -> None:
        """Finalise slots that fell due with no new point (idle assets, the wall clock)."""
        await report_starts(app.consumer, engine.arrival)
        started_ms = wall_ms()
        report_log_ends(app.consumer, engine.topics, engine.arrival, started_ms)
        if adoption.due and cast(Any, app.tables).recovery.completed.is_set() and \
                all(check() for check in stats.scoring_checks):
            adoption.due = False
            adoption.keys = list(table.data.keys())
        if adoption.keys:
            # the stored states of the partitions just assigned, restored (Engine.adopt), a
            # bounded number per tick so a large fleet does not stall the loop
            stats.counts["states_adopted"] += engine.adopt(adoption.take(), started_ms)
        out = engine.tick(started_ms)
        publish(out)
        metrics.observe(out, wall_ms(), engine=engine, finalised_at_ms=started_ms)
        metrics.assets.set(len(engine.states))
        if out.anomalies:
            # no input checkpoint vouches for a tick's anomalies: once the broker has them,
            # say so in their states, so a restore does not publish them again
            await sends.confirmed()
            acknowledged = BatchOutput()
            acknowledged.snapshots = engine.acknowledge(a for _, a in out.anomalies)
            publish(acknowledged)
        if uncommitted.due(time.monotonic()):  # the input went quiet: store what is held
            await store_states()

    def publish(out: BatchOutput, into: Sends | None = None) -> None:
        """Send what a batch or tick produced; synchronous, so never cut half-way. Every send
        is kept in ``into`` (by default the scoring agent's, awaited before a batch is acked)."""
        keep = into if into is not None else sends
        now_ms = wall_ms()
        for key, (partition, snap) in out.snapshots.items():
            table.data[key] = snap
            keep(table.send_changelog(partition, key, snap))
        for topic, partition, readings, arrived_ms in out.forward:
            # stamped with when the readings first reached Kafka: their lateness is judged by it
            keep(by_asset[topic].send_soon(key=readings[0].asset_id.encode(),
                                            value=encode_telemetry(readings), partition=partition,
                                            timestamp=None if arrived_ms is None else arrived_ms / 1000))
        for partition, anomaly in out.anomalies:
            keep(anomalies.send_soon(key=anomaly.key.encode(), value=encode_anomaly(anomaly),
                                      partition=partition,
                                      timestamp=record_time(anomaly.ts_ms, now_ms)))
        for partition, alert, hooks in out.alerts:
            alert_key = alert.alert_id.encode()
            # an alert record describes its group as of its latest anomaly
            keep(alerts.send_soon(key=alert_key, value=encode_alert(alert), partition=partition,
                                  timestamp=record_time(alert.last_ts_ms, now_ms)))
            if alert.notify and hooks:
                # a notification is a delivery to make now: stamped when published (the delivery
                # agent times its attempts and latency from it)
                keep(notifications.send_soon(key=alert_key, value=encode_notification(alert, hooks),
                                              partition=partition))
        if out.alerts:
            metrics.observe_alerts(a for _, a, _ in out.alerts)
        for inference_id, item in out.correlation:  # one partition per inference, in order
            keep(correlation.send_soon(key=inference_id.encode(), value=encode_feed(item)))
        for partition, inference_id, point in out.late:
            r = point.reading
            keep(late.send_soon(key=f"{inference_id}/{r.asset_id}/{r.ts_ms}".encode(),
                                 value=encode_late(inference_id, r, point.slot_ms, point.late_by_ms),
                                 partition=partition, timestamp=record_time(r.ts_ms, now_ms)))
        if out.rejections:
            for msg, rejection in out.rejections:
                keep(dead_letter.send_soon(key=msg.key, value=encode_dead_letter(
                    rejection, source_topic=msg.topic, partition=msg.partition,
                    offset=msg.offset, key=msg.key, received_at_ms=now_ms,
                ), partition=msg.partition))
        stats.counts.update(out.counts)
        for listener in stats.listeners:
            listener(out, keep)

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        parts = {tp.partition for tp in revoked if tp.topic in engine.topics}
        intake.clear()  # fetched before the rebalance: read again by whoever owns them next
        uncommitted.forget({(tp.topic, tp.partition) for tp in revoked})
        engine.drop_partitions(parts)
        holes.forget(parts)
        stats.assigned -= parts

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        stats.assigned = {tp.partition for tp in assigned if tp.topic in engine.topics}
        engine.owned = set(stats.assigned)

    async def on_rebalance_complete(sender: Any, *args: Any, **kwargs: Any) -> None:
        adoption.due = True  # the table holds the assigned partitions' states now

    # Faust's signal typing does not admit coroutine receivers; they are what it awaits
    cast(Any, app.on_partitions_revoked).connect(on_revoked)
    cast(Any, app.on_partitions_assigned).connect(on_assigned)
    cast(Any, app.on_rebalance_complete).connect(on_rebalance_complete)

    @app.page("/metrics")
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        metrics.observe_engine(engine, wall_ms())
        await metrics.observe_consumer(app, engine.topics)
        # as a header: aiohttp refuses a content_type argument that carries a charset
        return web.bytes(generate_latest(stats.registry),
                         headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/assetwatch/status/")
    async def status(web: Any, request: Any) -> Any:
        ready = cast(Any, app.tables).recovery.completed.is_set() and all(
            check() for check in stats.ready_checks)
        return web.json({
            "ready": ready,
            "assigned_partitions": sorted(stats.assigned),
            # the loop the worker runs on (Settings.event_loop): "uvloop" or "asyncio"
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "counts": dict(stats.counts),
            "inferences": [{**s.inference.to_dict(), "epoch": s.epoch} for s in engine.scorers],
        })

    return ScoringHandles(publish, table, metrics,
                          unacknowledged=lambda: batch_sends.pending() + sends.pending())
