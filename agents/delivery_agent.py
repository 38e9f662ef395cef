"""The delivery agent: notifications → a durable outbox table → hook calls, retries, dead letters.

``<prefix>.notifications`` (key = alert id, value = ``streams.notification``) is taken by the
agent ``hook-deliveries``, which writes one pending :class:`streams.delivery.Delivery` per
named hook into the changelog-backed table ``hook-outbox`` (key ``notification-id/hook``),
on the notification's own partition. Faust flushes the changelog before it commits the
input offset, so a notification is durable in the outbox before it is acknowledged.

A timer (``Settings.hook_tick_interval_s``) attempts the due deliveries of the partitions
this worker owns, each in its own task (one slow endpoint does not hold up the others), and
writes the new state back to the table: ``pending`` with its next attempt time (exponential
back-off with full jitter), ``delivered``, or ``dead`` — then a record with the reason goes to
``<prefix>.hooks.dead-letter``. A finished entry keeps only its state (not the notification)
for :data:`DONE_RETENTION_MS`, so a notification taken again (a restart before the commit, a
re-publication) is recognised and not delivered twice; then it is deleted (tombstone).

Guarantee: nothing is lost while an endpoint is down or across a restart; a delivery may be
attempted again after a crash (at-least-once), always with the same ``Idempotency-Key``, so a
receiver that honours it acts once. docs/hooks.md has the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import aiohttp
import faust
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.holes import HoleGuard, ReadOffsets, message_of
from agents.hooks import send_notification
from agents.send_buffer import Sends
from agents.settings import Settings
from streams.codec import dumps, loads
from streams.delivery import Attempt, Delivery, RetryPolicy, encode_hook_dead_letter
from streams.hooks import HookConfig
from streams.notification import Notification, decode_notification
from streams.outbox_index import OutboxIndex

log = logging.getLogger("assetwatch.hooks")

#: how long a delivered or dead entry stays in the outbox to recognise a re-published notification
DONE_RETENTION_MS = 24 * 3600 * 1000
#: the delivery timer indexes the whole outbox again this often (a safety net: entries are
#: indexed as they are written and when partitions are assigned; streams/outbox_index.py)
FULL_SCAN_INTERVAL_MS = 60_000
#: deliveries attempted at once by one worker
MAX_IN_FLIGHT = 64
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def wall_ms() -> int:
    """The wall clock, read here in the glue and handed to the pure core."""
    return time.time_ns() // 1_000_000


class HookSource(Protocol):
    """Where the delivery agent finds hook configs (``agents.hook_store.HookCache``)."""

    ready: bool

    def poll(self) -> None: ...

    def get(self, name: str) -> HookConfig | None: ...

    def names(self) -> list[str]: ...

    def close(self) -> None: ...


Sender = Callable[..., Awaitable[Attempt]]


#: the ``outcome`` label values of ``assetwatch_hook_deliveries_total``
DELIVERY_OUTCOMES = ("delivered", "retried", "dead")


class DeliveryMetrics:
    """``assetwatch_hook_*`` metrics, on the worker's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "assetwatch_hook_deliveries_total",
            "Hook delivery attempts by outcome: delivered, retried (failed, will retry), dead "
            "(failed for good, dead-lettered).", ["hook", "outcome"], registry=registry)
        self.latency = Histogram(
            "assetwatch_hook_delivery_latency_seconds",
            "From a notification's publication to its successful delivery through a hook.",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.pending = Gauge(
            "assetwatch_hook_deliveries_pending",
            "Deliveries waiting in this worker's outbox partitions.", registry=registry)
        self.invalid = Counter(
            "assetwatch_hook_notifications_invalid_total",
            "Notification records that could not be read (dead-lettered).", registry=registry)

    def know(self, hook: str) -> None:
        """Start a hook's series at zero, so that ``rate()`` sees its first delivery too."""
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(hook, outcome)


@dataclass
class DeliveryState:
    """What the delivery side of one worker holds besides its table (for the status page)."""

    owned: set[int] = field(default_factory=set)
    in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    session: aiohttp.ClientSession | None = None

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.hook_max_attempts,
                       base_delay_ms=settings.hook_base_delay_ms,
                       max_delay_ms=settings.hook_max_delay_ms, jitter="full")


def register_delivery_agent(
    app: faust.App,
    settings: Settings,
    hook_source: HookSource,
    metrics_registry: CollectorRegistry,
    *,
    read_offsets: ReadOffsets,
    sender: Sender = send_notification,
    clock: Callable[[], int] = wall_ms,
    rng: random.Random | None = None,
) -> DeliveryState:
    """Declare the outbox table, the agent, the delivery timer and ``/assetwatch/hooks/`` on ``app``."""
    topics = settings.topics
    policy = retry_policy(settings)
    rand = rng or random.Random()
    metrics = DeliveryMetrics(metrics_registry)
    state = DeliveryState()
    outbox = app.Table("hook-outbox", default=None, partitions=settings.partitions, key_type=str)
    notifications = app.topic(topics.notifications, key_serializer="raw", value_serializer="raw",
                              partitions=settings.partitions)
    dead_letters = app.topic(topics.hooks_dead_letter, key_serializer="raw",
                             value_serializer="raw", partitions=1)

    sends = Sends()
    # a notification the live stream skipped would never be delivered: read such holes back
    holes = HoleGuard(outbox, read_offsets, lambda topic, n: state.count("hole_records", n),
                      unchecked_from=0)

    # when each outbox entry next needs the timer: a tick visits only those (streams/outbox_index.py)
    index = OutboxIndex()
    indexed: set[int] = set()  # partitions whose entries are in the index
    last_full_scan = [0]

    def put(partition: int, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            outbox.data.pop(key, None)
            index.remove(key)
            sends(outbox.send_changelog(partition, key, None, value_serializer="raw"))
        else:
            outbox.data[key] = value
            index_entry(key, value)
            sends(outbox.send_changelog(partition, key, value))

    def index_entry(key: str, value: Any) -> None:
        """Index an outbox entry by when it next matters: its next attempt, or its expiry."""
        if not isinstance(value, dict) or not isinstance(value.get("partition"), int):
            return
        try:
            d = Delivery.restore(value["delivery"])
        except (KeyError, ValueError):
            index.set(key, value["partition"], 0, pending=False)  # dropped when popped
            return
        if d.done:
            index.set(key, value["partition"], (d.finished_at_ms or 0) + DONE_RETENTION_MS,
                      pending=False)
        else:
            index.set(key, value["partition"], d.next_attempt_ms, pending=True)

    def scan(partitions: set[int]) -> None:
        """Index the entries of ``partitions`` from the table (after an assignment, and every
        FULL_SCAN_INTERVAL_MS as a safety net for entries a changelog recovery added)."""
        for key, value in list(outbox.data.items()):
            if isinstance(value, dict) and value.get("partition") in partitions:
                index_entry(key, value)
        indexed.update(partitions)

    # ------------------------------------------------------------------ taking notifications

    @app.agent(notifications, name="hook-deliveries")
    async def take(stream: faust.StreamT) -> None:
        async for event in cast(faust.Stream, stream).events():
            m = event.message
            taken = await holes.fill([message_of(m)])
            for record in taken[:-1]:  # read back from the broker: no producer timestamp
                accept(record, None)
            accept(m, m.timestamp)
            await sends.confirmed()  # the outbox entry out before the ack
            holes.checkpoint(taken, sends)

    def accept(message: Any, ts: float | None) -> None:
        """One notification record (produced at ``ts``, in seconds, if known) → pending
        deliveries in the outbox (synchronous)."""
        raw: bytes = message.value or b""
        partition: int = message.partition
        now = clock()
        try:
            n = decode_notification(raw)
        except ValueError as exc:
            metrics.invalid.inc()
            state.count("invalid")
            log.warning("unreadable notification at %s[%s]@%s: %s", message.topic, partition,
                        message.offset, exc)
            sends(dead_letters.send_soon(key=message.key, value=encode_hook_dead_letter(
                reason=str(exc), dead_at_ms=now, raw=raw)))
            return
        created = int(ts * 1000) if ts and ts > 0 else now
        plain = loads(raw)
        for hook in n.hooks:
            metrics.know(hook)
            d = Delivery.pending(n.notification_id, hook, created)
            if d.key in outbox.data:
                state.count("duplicate")
                continue  # taken before: re-published, or re-read after a restart
            put(partition, d.key, {"partition": partition, "delivery": d.snapshot(),
                                   "notification": plain})
            state.count("accepted")

    # ------------------------------------------------------------------ delivering

    def recovered() -> bool:
        return bool(cast(Any, app.tables).recovery.completed.is_set())

    @app.timer(settings.hook_tick_interval_s)
    async def deliver_due() -> None:
        hook_source.poll()
        if not hook_source.ready or not recovered():
            return
        now = clock()
        owned = set(state.owned)
        if now - last_full_scan[0] >= FULL_SCAN_INTERVAL_MS:
            last_full_scan[0] = now
            scan(owned)
        elif owned - indexed:
            scan(owned - indexed)
        for key in index.pop_due(now, owned, limit=max(MAX_IN_FLIGHT - len(state.in_flight), 0)):
            value = outbox.data.get(key)
            if not isinstance(value, dict):
                index.remove(key)
                continue
            try:
                d = Delivery.restore(value["delivery"])
            except (KeyError, ValueError):
                put(value["partition"], key, None)  # not ours to read: drop it
                continue
            if d.done:
                if d.finished_at_ms is not None and d.finished_at_ms + DONE_RETENTION_MS <= now:
                    put(value["partition"], key, None)
                else:
                    index_entry(key, value)
                continue
            if key in state.in_flight:
                continue  # its attempt writes it back, which indexes it again
            state.in_flight[key] = asyncio.ensure_future(attempt(key, value, d))
        metrics.pending.set(index.pending)

    async def attempt(key: str, value: dict[str, Any], d: Delivery) -> None:
        try:
            await _attempt(key, value, d)
        except Exception:  # never let one delivery end the timer; it stays pending
            log.exception("delivery %s failed unexpectedly; it will be retried", key)
            index.retry_later(key, clock() + policy.base_delay_ms)
        finally:
            state.in_flight.pop(key, None)

    async def _attempt(key: str, value: dict[str, Any], d: Delivery) -> None:
        partition = int(value["partition"])
        hook = hook_source.get(d.hook)
        notification = decode_notification(dumps(value["notification"]))
        if hook is None:
            result = Attempt("retry", f"no hook named {d.hook!r}")
        else:
            if state.session is None or state.session.closed:
                state.session = aiohttp.ClientSession()
            result = await sender(hook, notification, session=state.session, now_ms=clock())
        now = clock()
        after = d.record(result, now, policy, rand)
        if partition not in state.owned:
            return  # revoked meanwhile: the new owner attempts it again (same idempotency key)
        if after.outcome == "pending":
            put(partition, key, {**value, "delivery": after.snapshot()})
            metrics.deliveries.labels(d.hook, "retried").inc()
            state.count("retried")
            log.info("hook %s: attempt %d of %s failed (%s); next in %d ms", d.hook, after.attempts,
                     d.notification_id, after.last_error, after.next_attempt_ms - now)
            return
        put(partition, key, {"partition": partition, "delivery": after.snapshot()})
        if after.outcome == "delivered":
            metrics.deliveries.labels(d.hook, "delivered").inc()
            metrics.latency.observe(max(0, now - d.created_at_ms) / 1000)
            state.count("delivered")
            return
        metrics.deliveries.labels(d.hook, "dead").inc()
        state.count("dead")
        reason = after.last_error or result.detail
        log.warning("hook %s: delivery of %s dead-lettered: %s", d.hook, d.notification_id, reason)
        dead_letters.send_soon(key=key.encode(), value=encode_hook_dead_letter(
            reason=reason, dead_at_ms=now, delivery=after,
            hook_config=None if hook is None else hook.to_public_dict(),
            notification=value["notification"]))

    # ------------------------------------------------------------------ partitions, shutdown

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        gone = {tp.partition for tp in revoked if tp.topic == topics.notifications}
        state.owned -= gone
        holes.forget(gone)
        index.forget_partitions(gone)
        indexed.difference_update(gone)

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        state.owned = {tp.partition for tp in assigned if tp.topic == topics.notifications}
        indexed.difference_update(state.owned)  # indexed again once their table is recovered

    async def on_shutdown(sender: Any, *args: Any, **kwargs: Any) -> None:
        tasks = list(state.in_flight.values())
        for task in tasks:
            task.cancel()  # still pending in the outbox: attempted again after the restart
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if state.session is not None:
            await state.session.close()
        hook_source.close()

    cast(Any, app.on_partitions_revoked).connect(on_revoked)
    cast(Any, app.on_partitions_assigned).connect(on_assigned)
    cast(Any, app.on_before_shutdown).connect(on_shutdown)

    @app.page("/assetwatch/hooks/")
    async def hooks_status(web: Any, request: Any) -> Any:
        outcomes: dict[str, int] = {}
        for value in list(outbox.data.values()):
            if isinstance(value, dict) and value.get("partition") in state.owned:
                outcome = str(value.get("delivery", {}).get("outcome"))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return web.json({
            "ready": hook_source.ready and recovered(),
            "owned_partitions": sorted(state.owned),
            "hooks": hook_source.names(),
            "outbox": outcomes,
            "in_flight": len(state.in_flight),
            "counts": dict(state.counts),
            "retry_policy": policy.to_dict(),
        })

    return state


__all__ = ["DeliveryMetrics", "DeliveryState", "HookSource", "Notification", "register_delivery_agent"]
