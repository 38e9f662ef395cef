"""Running one replay against Kafka (SPEC §6, issue 14): the glue around :mod:`streams.replay`.

1. **Read the range by time.** Each partition of the telemetry topic is sought to a lower bound
   with ``offsets_for_times(history_from − grace)`` (Apache Kafka answers precisely; the
   embedded broker answers offset 0 for past times, also a lower bound) and read up to the
   high watermark seen when the replay began — what arrives later is the live stream's. The
   readings' own event times are then filtered to ``[history_from, end)``, and only the
   inference's assets are kept, so memory holds the range (≤ 2,000 slots per asset plus a
   window), not the topic.
2. **Score apart** with :func:`streams.replay.score_range` (fresh states; the live engine is
   not touched).
3. **Overwrite**: the anomalies republished under their keys, then a tombstone for every key in
   the range whose latest value on the anomalies topic is an anomaly the replay did not find.

Nothing here sends an alert or a notification: the anomalies carry a ``replay_id``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from agents.connection import KafkaConnection
from agents.history import SEEK_GRACE_MS
from agents.kafka_io import make_producer, reader_consumer
from streams.codec import encode_anomaly
from streams.decode import decode_telemetry
from streams.records import Reading, Rejection
from streams.replay import ReplayState, in_range, keys_to_tombstone, replay_assets, score_range
from streams.scoring import AssetScorer

#: Reading stops at each partition's end as the fetch responses show it.
EOF = {"enable.partition.eof": True}
#: How long reading one topic's range may take before the replay fails.
READ_DEADLINE_S = 60.0


def _records(consumer: Consumer, starts: list[TopicPartition], ends: dict[int, int],
             deadline_s: float) -> Iterator[Any]:
    """Each record of ``starts`` up to the end of its partition as the fetch responses show it
    (partition EOF; the consumer is made with ``enable.partition.eof``). ``ends`` (the high
    watermarks asked first) only tell which partitions hold anything: the embedded broker's
    listed end offsets lag behind its log, its fetch responses do not."""
    todo = [tp for tp in starts if ends.get(tp.partition, 0) > 0]
    if not todo:
        return
    topic = todo[0].topic
    consumer.assign(todo)
    remaining = {tp.partition for tp in todo}
    deadline = time.monotonic() + deadline_s
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"range of {topic} not read within {deadline_s:.0f} s")
        for m in consumer.consume(num_messages=1000, timeout=0.2):
            err = m.error()
            if err is None:
                yield m
            elif err.code() == KafkaError._PARTITION_EOF:
                remaining.discard(m.partition())
            else:
                raise RuntimeError(f"reading {topic}: {err}")


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    if meta.error is not None:
        raise RuntimeError(f"topic {topic}: {meta.error}")
    return sorted(meta.partitions)


def _bounds(consumer: Consumer, topic: str, from_ms: int | None) -> tuple[list[TopicPartition],
                                                                           dict[int, int]]:
    """Where to start each partition (by time, or the beginning) and the end to stop at."""
    parts = _partitions(consumer, topic)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts}
    if from_ms is None:
        starts = [TopicPartition(topic, p, consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10)[0]) for p in parts]
        return starts, ends
    asked = [TopicPartition(topic, p, max(0, from_ms - SEEK_GRACE_MS)) for p in parts]
    found = consumer.offsets_for_times(asked, timeout=10)
    # -1: no record at or after that time; nothing to read there
    starts = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else ends[tp.partition])
              for tp in found]
    return starts, ends


def read_range(kafka: KafkaConnection, topic: str, from_ms: int, end_ms: int,
               assets: frozenset[str] = frozenset()) -> list[Reading]:
    """The readings of ``topic`` stamped in ``[from_ms, end_ms)`` (of ``assets``, if given)."""
    consumer = reader_consumer(kafka, "replay", **EOF)
    try:
        starts, ends = _bounds(consumer, topic, from_ms)
        out: list[Reading] = []
        for m in _records(consumer, starts, ends, READ_DEADLINE_S):
            decoded = decode_telemetry(m.value() or b"", m.key())
            if isinstance(decoded, Rejection):
                continue
            out += [r for r in decoded if from_ms <= r.ts_ms < end_ms
                    and (not assets or r.asset_id in assets)]
        return out
    finally:
        consumer.close()


def standing_keys(kafka: KafkaConnection, topic: str, inference_id: str, start_ms: int,
                  end_ms: int, assets: frozenset[str] = frozenset()) -> set[str]:
    """The anomaly keys of the inference in ``[start, end)`` (of ``assets``, if given) whose
    latest value is an anomaly.

    Keys carry the anomaly's own time, not the record's, so every partition is read from its
    beginning; only the keys in range are kept.
    """
    consumer = reader_consumer(kafka, "replay-keys", **EOF)
    try:
        starts, ends = _bounds(consumer, topic, None)
        standing: set[str] = set()
        for m in _records(consumer, starts, ends, READ_DEADLINE_S):
            key = (m.key() or b"").decode("utf-8", "replace")
            if not in_range(key, inference_id, start_ms, end_ms, assets):
                continue
            if m.value() is None:
                standing.discard(key)
            else:
                standing.add(key)
        return standing
    finally:
        consumer.close()


def run_replay(kafka: KafkaConnection, scorer: AssetScorer, replay: ReplayState,
               anomalies_topic: str, wall_ms: Callable[[], int],
               report: Callable[[ReplayState], None] = lambda r: None) -> ReplayState:
    """Run an Accepted replay to its end: Succeeded, or Failed with the reason. ``report``
    gets each state on the way (Running, with progress, then the outcome)."""
    state = replay.running(wall_ms())
    report(state)
    try:
        cfg = scorer.inference
        assets = replay_assets(cfg.assets, frozenset(replay.assets))
        history_from = scorer.history_from_ms(replay.start_ms)
        readings = read_range(kafka, cfg.topic, history_from, replay.end_ms, assets)
        anomalies, done = score_range(scorer, readings, replay.start_ms, replay.end_ms,
                                      replay.replay_id, assets)
        state = state.progressed(done, wall_ms())
        report(state)
        existing = standing_keys(kafka, anomalies_topic, cfg.inference_id, replay.start_ms,
                                 replay.end_ms, assets)
        gone = keys_to_tombstone(existing, [a.key for a in anomalies], cfg.inference_id,
                                 replay.start_ms, replay.end_ms, assets)
        producer = make_producer(kafka)
        for a in anomalies:
            producer.produce(anomalies_topic, key=a.key.encode(), value=encode_anomaly(a))
        for key in gone:
            producer.produce(anomalies_topic, key=key.encode(), value=None)
        left = producer.flush(30)
        if left:
            raise RuntimeError(f"{left} records not delivered to {anomalies_topic}")
    except Exception as exc:  # the outcome is reported, never left Running
        state = state.failed(f"{type(exc).__name__}: {exc}"[:500], wall_ms())
        report(state)
        return state
    state = state.succeeded(wall_ms())
    report(state)
    return state
