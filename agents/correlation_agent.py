"""The correlation agent: the feed of inference-scope alerts → alert records (SPEC §7).

Workers put every anomaly of an inference with an inference-scope alert config, and each
partition's progress, on ``<prefix>.alert-correlation`` keyed by inference id
(``Engine.tick``; ``streams/correlation.py``). This agent, on whichever worker holds the feed
partition, keeps one :class:`streams.correlation.InferenceCorrelation` per inference, its
snapshot in the ``alert-correlation`` table (so a restart neither re-notifies an open group nor
loses a resolution), and publishes the alerts it makes like the engine's own (alerts topic,
notifications for the inference's hooks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

import faust

from agents.holes import HoleGuard, ReadOffsets, message_of
from agents.scoring_agent import Publish
from agents.send_buffer import Sends
from agents.settings import Settings
from streams.correlation import InferenceCorrelation, Progress, decode_feed
from streams.engine import BatchOutput, Engine, Message
from streams.scoring import AssetScorer

log = logging.getLogger(__name__)


def register_correlation_agent(
    app: faust.App, settings: Settings, engine: Engine,
    publish: Publish, ready: Callable[[], bool], read_offsets: ReadOffsets,
) -> None:
    """Declare the correlation table and agent on ``app``; ``ready`` says when the worker knows
    its inferences (until then a record would find no alert config); ``read_offsets`` reads
    back what the feed's live stream skipped (:mod:`agents.holes`)."""
    table = app.Table("alert-correlation", default=None, partitions=settings.partitions,
                      key_type=str)
    feed = app.topic(settings.topics.correlation, key_serializer="raw",
                     value_serializer="raw", partitions=settings.partitions)
    #: inference id → (the scorer it was built for, the correlation), while the table holds it
    live: dict[str, tuple[AssetScorer, InferenceCorrelation]] = {}
    sends = Sends()
    # a skipped anomaly would never join its group: read such holes back
    holes = HoleGuard(table, read_offsets)

    @app.agent(feed, name="correlate")
    async def correlate(stream: faust.StreamT) -> None:
        async for event in cast(faust.Stream, stream).events():
            while not ready():
                await asyncio.sleep(0.05)  # polling a condition: the status topic applied
            m = event.message
            taken = await holes.fill([message_of(m)])
            for record in taken:
                handle(record)
            await sends.confirmed()  # the table and the alerts out before the ack
            holes.checkpoint(taken, sends)

    def handle(message: Message) -> None:
        inference_id = (message.key or b"").decode()
        scorer = engine.scorer(inference_id)
        if scorer is None:
            return  # paused or deleted: its groups wait in the table for a restart
        try:
            item = decode_feed(message.value or b"")
        except ValueError as exc:
            log.warning("skipping %s[%s]@%s: %s", message.topic, message.partition,
                        message.offset, exc)
            return
        correlation = _correlation(inference_id, scorer)
        if isinstance(item, Progress):
            alerts = correlation.progress(item.partition, item.watermark_ms)
        else:
            alerts = correlation.add(item)
        snapshot = correlation.snapshot()
        table.data[inference_id] = snapshot
        sends(table.send_changelog(message.partition, inference_id, snapshot))
        if alerts:
            hooks = scorer.inference.hooks
            publish(BatchOutput(alerts=[(message.partition, a, hooks) for a in alerts]), sends)

    def _correlation(inference_id: str, scorer: AssetScorer) -> InferenceCorrelation:
        held = live.get(inference_id)
        if held is not None and held[0] is scorer:
            return held[1]
        correlation = InferenceCorrelation(
            inference_id, scorer.model.interval_ms, scorer.inference.alerts,
            table.data.get(inference_id), partitions=engine.partitions)
        live[inference_id] = (scorer, correlation)
        return correlation

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        live.clear()  # another worker may take a feed partition; the table is the truth
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        holes.forget(tp.partition for tp in revoked if tp.topic == settings.topics.correlation)

    cast(Any, app.on_partitions_revoked).connect(on_revoked)
