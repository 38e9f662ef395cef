"""A pipeline under test: model, inference file, topics and workers on the session broker."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTP
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from confluent_kafka import Consumer, TopicPartition

from agents.broker import ensure_topics
from agents.connection import KafkaConnection
from agents.kafka_io import make_producer, poll_values, produce_readings, topic_reader
from agents.model_store import ModelStore
from agents.settings import Settings, TopicNames
from agents.topics import topic_specs
from agents.worker_process import WorkerProcess
from streams.alerts import Alert
from streams.codec import encode_telemetry
from streams.correlation import InferenceCorrelation, Progress
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model, ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, training_rows

INTERVAL_MS = 1_000
START_MS = 1_767_225_600_000


def small_model(window: int = 8) -> Model:
    return fit_model(training_rows(4, 1500, seed=11),
                     ModelParams(model_id="pumps", signals=SIGNALS, window_size=window))


def rest_call(port: int, method: str, path: str, body: Any = None,
              token: str | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of one request to a worker's REST API; ``body`` is sent as
    is when bytes, as JSON otherwise; ``token`` goes in ``Authorization: Bearer``."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # polling interval of a deadline-bounded wait
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {value!r})")


OPEN: list[Pipeline] = []  # closed after each test by tests/integration/conftest.py


@dataclass
class Pipeline:
    kafka: KafkaConnection
    settings: Settings
    workdir: Path
    model: Model
    inference: InferenceConfig
    _collectors: dict[str, tuple[Any, list[tuple[bytes | None, bytes | None]]]] = field(
        default_factory=dict)

    @classmethod
    def create(cls, kafka: KafkaConnection, name: str, workdir: Path, partitions: int = 4,
               model: Model | None = None, models_dir: Path | None = None,
               **options: Any) -> Pipeline:
        """A pipeline scoring with ``model`` (saved to a fresh store), or with the model already
        in ``models_dir``; ``options``: more of the inference's settings."""
        settings = replace(Settings(), broker=kafka.bootstrap, kafka_properties=kafka.properties,
                           app_id=name, topics=TopicNames(name),
                           partitions=partitions, models_dir=models_dir or workdir / "models")
        if models_dir is not None:
            if model is None:
                raise ValueError("name the model to use from models_dir")
        else:
            model = model or small_model()
            ModelStore(settings.models_dir).save(model)
        # historical timestamps: event time, idle after 1 s so the last slots are finalised
        inference = InferenceConfig(inference_id="inf", model_id=model.model_id,
                                    topic=settings.topics.telemetry, clock="event",
                                    **{"idle_timeout_ms": 1_000, **options})
        (workdir / "inferences.json").write_bytes(orjson.dumps([inference.to_dict()]))
        ensure_topics(kafka, topic_specs(settings))
        pipeline = cls(kafka, settings, workdir, model, inference)
        OPEN.append(pipeline)
        return pipeline

    def worker(self, log_name: str = "worker.log", extra_args: Sequence[str] = ()) -> WorkerProcess:
        return WorkerProcess(self.kafka, self.workdir / "inferences.json",
                             self.settings.models_dir, self.settings.app_id,
                             self.settings.topics.prefix, self.settings.partitions,
                             extra_args=extra_args, log_path=self.workdir / log_name)

    def send(self, readings: Sequence[Reading], per_message: int = 1) -> int:
        producer = make_producer(self.kafka)
        n = produce_readings(producer, self.settings.topics.telemetry, readings, per_message)
        assert producer.flush(10) == 0
        return n

    def send_from_gateway(self, readings: Sequence[Reading], per_message: int, key: bytes) -> None:
        """Batches of consecutive readings of several assets under one gateway key."""
        producer = make_producer(self.kafka)
        for i in range(0, len(readings), per_message):
            producer.produce(self.settings.topics.telemetry, key=key,
                             value=encode_telemetry(readings[i:i + per_message]))
        assert producer.flush(10) == 0

    def send_raw(self, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        producer = make_producer(self.kafka, **{"message.max.bytes": 10_000_000})
        for key, value in items:
            producer.produce(self.settings.topics.telemetry, key=key, value=value)
        assert producer.flush(10) == 0

    def read(self, topic: str, timeout_s: float = 0.3) -> list[tuple[bytes | None, bytes | None]]:
        """Every record of ``topic`` so far: one consumer per topic, kept and polled again.

        (A fresh consumer needs more than a second for its first records; short reads with
        new consumers never see anything.)
        """
        collector = self._collectors.get(topic)
        if collector is None:
            consumer = topic_reader(self.kafka, topic, self.settings.partitions)
            collector = self._collectors[topic] = (consumer, [])
        consumer, records = collector
        records.extend(poll_values(consumer, timeout_s))
        return list(records)

    def anomaly_keys(self, timeout_s: float = 0.3) -> list[str]:
        return [k.decode() for k, _ in self.read(self.settings.topics.anomalies, timeout_s) if k]

    def wait_for_anomalies(self, expected: set[str], timeout_s: float = 30) -> list[str]:
        """Every anomaly key published, once at least the expected number are there."""
        keys: list[str] = wait_for(
            lambda: (k := self.anomaly_keys()) and len(set(k)) >= len(expected) and k,
            timeout_s, f"{len(expected)} anomalies")
        return keys

    def scored_keys(self, readings: Sequence[Reading], expected: set[str],
                    per_message: int = 1) -> list[str]:
        """Run a worker, send the readings, and return every anomaly key it published."""
        with self.worker() as w:
            w.wait_ready(60)
            self.send(readings, per_message)
            wait_for(received(w, len(readings)), 60, "all readings received")
            return self.wait_for_anomalies(expected, 30)

    def close(self) -> None:
        for consumer, _ in self._collectors.values():
            consumer.close()
        self._collectors.clear()

    def expected_keys(self, readings: Sequence[Reading], per_message: int = 1) -> set[str]:
        engine = Engine([AssetScorer(self.inference, self.model)], load=lambda k: None, partitions=1)

        keys: set[str] = set()
        by_asset: dict[str, list[Reading]] = {}
        for r in readings:
            by_asset.setdefault(r.asset_id, []).append(r)
        for asset, rs in by_asset.items():
            for i in range(0, len(rs), per_message):
                out = engine.process_batch([Message(self.settings.topics.telemetry, 0, 0,
                                                    asset.encode(),
                                                    encode_telemetry(rs[i:i + per_message]))])
                keys.update(a.key for _, a in out.anomalies)
        # the worker's idle rule finalises the last slots once the feed stops
        keys.update(a.key for _, a in engine.tick(now_ms=10**13).anomalies)
        return keys

    def expected_alerts(self, readings: Sequence[Reading]) -> list[Alert]:
        """The inference-scope alerts of the readings, scored in one engine and correlated."""
        engine = Engine([AssetScorer(self.inference, self.model)], load=lambda k: None, partitions=1)
        engine.owned = {0}
        out = engine.process_batch([Message(self.settings.topics.telemetry, 0, i, r.asset_id.encode(),
                                            encode_telemetry([r])) for i, r in enumerate(readings)])
        correlation = InferenceCorrelation(self.inference.inference_id, self.model.interval_ms,
                                           self.inference.alerts)
        alerts: list[Alert] = []
        for _, item in out.correlation + engine.tick(now_ms=10**13).correlation:
            alerts += (correlation.progress(item.partition, item.watermark_ms)
                       if isinstance(item, Progress) else correlation.add(item))
        return alerts


def received(worker: WorkerProcess, n: int) -> Callable[[], bool]:
    def check() -> bool:
        st = worker.status()
        return bool(st) and st["counts"].get("received", 0) >= n  # type: ignore[index]
    return check


#: what a point taken by an inference comes to once its slot is finalised
FINALISED = ("scored", "warming_up", "incomplete", "gap")


def finalised_count(worker: WorkerProcess) -> int:
    """How many points the worker has finalised (scored or not)."""
    st = worker.status() or {}
    return sum(st.get("counts", {}).get(kind, 0) for kind in FINALISED)  # type: ignore[union-attr]


def finalised(worker: WorkerProcess, n: int) -> Callable[[], bool]:
    """Whether ``n`` points have been finalised (a point received may still wait for its slot,
    or for the pre-fill of a new epoch)."""
    return lambda: finalised_count(worker) >= n


def end_offsets(kafka: KafkaConnection, topic: str, partitions: int, records: int) -> dict[int, int]:
    """Per partition of ``topic``, the offset after its last record, once all ``records`` are
    there (counted: the embedded broker's end offsets are not exact)."""
    reader = topic_reader(kafka, topic, partitions)
    ends: dict[int, int] = {}
    try:
        def all_read() -> bool:
            for m in reader.consume(num_messages=500, timeout=0.2):
                if m.error() is None:
                    ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
            return sum(ends.values()) >= records
        wait_for(all_read, 30, f"{records} records of {topic}")
    finally:
        reader.close()
    return ends


def committed_offsets(kafka: KafkaConnection, group: str, topic: str,
                      partitions: int) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic`` (-1001: none), read without joining."""
    consumer = Consumer(kafka.client_config(**{"group.id": group, "enable.auto.commit": False}))
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def wait_committed(p: Pipeline, ends: dict[int, int], timeout_s: float, what: str) -> None:
    """Wait until the pipeline's worker group has committed its telemetry topic up to
    ``ends`` (per partition, as :func:`end_offsets` gives them)."""
    s = p.settings
    wait_for(lambda: all(committed_offsets(p.kafka, s.app_id, s.topics.telemetry, s.partitions)[k]
                         >= end for k, end in ends.items()), timeout_s, what)


class _AsFaust(RoundRobinPartitionAssignor):
    """Round robin under Faust's protocol name: the embedded broker keeps an emptied group's
    protocol and refuses members that do not name it (and commits from outside the group)."""

    name = "faust"


def commit_offsets(kafka: KafkaConnection, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Join ``group`` as a consumer of ``topic`` and commit ``offsets`` (no worker may run)."""

    async def join_and_commit() -> dict[int, int]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False,
            # the tier's group timeouts: 2 s is below Apache Kafka's stock minimum (6 s)
            session_timeout_ms=int(kafka.properties.get("session.timeout.ms", 2000)),
            heartbeat_interval_ms=int(kafka.properties.get("heartbeat.interval.ms", 200)),
            partition_assignment_strategy=(_AsFaust,))
        await consumer.start()
        try:
            deadline = time.monotonic() + 60
            while not set(offsets) <= {tp.partition for tp in consumer.assignment()}:
                assert time.monotonic() < deadline, "the committing consumer got no partitions"
                await consumer.getmany(timeout_ms=200)
            await consumer.commit({AioTP(topic, part): off for part, off in offsets.items()})
            return {part: await consumer.committed(AioTP(topic, part)) for part in offsets}
        finally:
            await consumer.stop()

    assert asyncio.run(join_and_commit()) == offsets
