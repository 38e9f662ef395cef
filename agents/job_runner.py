"""A worker's job runner: takes job requests from the jobs topic and runs them, one at a time.

The workers of a deployment share ``<prefix>.jobs`` as the consumer group ``<app id>.jobs``,
so each job goes to one worker. The runner is a thread with its own consumer (not Faust's:
a job runs for seconds or hours, which a Faust agent must not block on):

1. it takes the next request; a job whose state is already final (its worker finished it but
   died before committing) is skipped; a job with a cancel request is Canceled at once;
2. it pauses its partitions and runs the job (:func:`agents.job_exec.execute`) in this
   thread; between chunks it polls the consumer (so the group sees it alive and rebalances
   reach it), checks for a cancel request, and publishes the progress (at most once a second);
3. it writes the final state, flushes, and only then commits the request's offset.

So a worker killed mid-job leaves the request uncommitted: once the group notices (its
session timeout), the partition's new owner takes the job up again from the start (the next
``attempt``), and the half-written results file of the dead worker was never visible. A job
whose partition is revoked (a worker joined or left) stops the same way, silently, and its
new owner runs it again. A worker that stops (SIGTERM) does the same.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from agents.connection import KafkaConnection
from agents.job_exec import JobStoppedError, execute
from agents.job_io import Storage, parse_location
from agents.jobs import decode_job_state, job_topics, wall_ms
from agents.kafka_io import make_producer
from agents.model_store import ModelStore
from agents.settings import Settings
from agents.topic_view import TopicView
from streams.batch_input import DEFAULT_CHUNK_ROWS
from streams.codec import dumps, loads
from streams.jobs import JobSpec, JobState, Rejected, advance

log = logging.getLogger(__name__)

#: where ``job create --input -`` stages standard input: ``<output>/<model>/.inputs/``
STAGING = ".inputs"

#: the least time between two progress records of a job
PROGRESS_EVERY_S = 1.0


def _cancel_record(value: bytes) -> dict[str, Any]:
    doc = loads(value)
    if not isinstance(doc, dict):
        raise ValueError("not a cancel request")
    return doc


class JobRunner:
    """Runs the jobs of the partitions of ``<prefix>.jobs`` this worker holds."""

    def __init__(self, settings: Settings, kafka: KafkaConnection, store: ModelStore, worker_id: str,
                 storage: Storage | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.settings = settings
        self.kafka = kafka
        self.store = store
        self.worker_id = worker_id
        self.storage = storage or Storage()
        self.chunk_rows = chunk_rows
        self.requests, status, control = job_topics(settings)
        self.status = TopicView(kafka, status, decode_job_state)
        self.cancels = TopicView(kafka, control, _cancel_record)
        self._producer = make_producer(kafka)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-runner", daemon=True)
        #: the partition of the job running now, and whether it must be abandoned
        self._running: int | None = None
        self._abandon = False
        self.counts = {"succeeded": 0, "partially_succeeded": 0, "failed": 0, "canceled": 0,
                       "abandoned": 0}
        self.current: JobState | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> JobRunner:
        self.status.start()
        self.cancels.start()
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.status.close()
        self.cancels.close()
        self._producer.flush(5)

    def _consumer(self) -> Consumer:
        fast = self.settings.fast_group if self.settings.fast_group is not None else self.kafka.embedded
        group = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 200} if fast else \
            {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
        props = self.kafka.properties
        config = {k: v for k, v in group.items() if k not in props}
        return Consumer(self.kafka.client_config(**{
            "group.id": f"{self.settings.app_id}.jobs", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, **config}))

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        consumer = self._consumer()
        consumer.subscribe([self.requests], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stop.is_set() and not self.status.wait_caught_up(0.5):
                consumer.poll(0)
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("jobs topic: %s", error)
                    continue
                self._take(consumer, msg)
        except Exception:
            log.exception("the job runner stopped")
        finally:
            consumer.close()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        if self._running is not None:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._running is not None and any(tp.partition == self._running for tp in partitions):
            self._abandon = True

    def _take(self, consumer: Consumer, msg: Any) -> None:
        tp = TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)
        try:
            spec = JobSpec.from_dict(loads(msg.value()))
        except ValueError as exc:
            log.warning("skipping an unreadable job request at offset %d: %s", msg.offset(), exc)
            consumer.commit(offsets=[tp], asynchronous=False)
            return
        current = self.status.get(spec.job_id) or JobState.accepted(spec, spec.submitted_at_ms)
        if current.final:
            consumer.commit(offsets=[tp], asynchronous=False)
            return
        if self.cancels.get(spec.job_id) is not None:
            self._publish(current, "Canceled", reason="canceled before it started")
            self.counts["canceled"] += 1
            consumer.commit(offsets=[tp], asynchronous=False)
            return
        consumer.pause(consumer.assignment())
        self._running, self._abandon = msg.partition(), False
        try:
            finished = self._run_job(consumer, spec, current)
        except Exception as exc:  # a bug, not the input: the job fails, the runner goes on
            log.exception("job %s", spec.job_id)
            self._publish(self.current or current, "Failed", reason=f"{type(exc).__name__}: {exc}")
            finished = True
        finally:
            self._running = None
            self.current = None
        if finished:
            self._drop_staged(spec)
        try:
            if finished:
                consumer.commit(offsets=[tp], asynchronous=False)
            else:  # abandoned: taken up again, here or by the partition's new owner
                consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
        except KafkaException as exc:  # the partition moved meanwhile: its new owner decides
            log.info("job %s: %s", spec.job_id, exc)
        consumer.resume(consumer.assignment())

    def _drop_staged(self, spec: JobSpec) -> None:
        """An input ``job create --input -`` staged beside the results goes once the job is final."""
        staged = parse_location(spec.output).child(spec.model_id, STAGING)
        if spec.input.startswith(str(staged) + "/"):
            self.storage.delete(parse_location(spec.input))

    def _run_job(self, consumer: Consumer, spec: JobSpec, current: JobState) -> bool:
        """Run one job to a final state (True), or abandon it (False)."""
        started = self._publish(current, "InProgress", attempt=current.attempt + 1,
                                worker=self.worker_id, progress_pct=0.0)
        if started is None:
            return True
        last = [time.monotonic()]

        def checkpoint() -> None:
            consumer.poll(0)  # rebalance callbacks and group liveness; partitions are paused
            if self._stop.is_set() or self._abandon:
                raise JobStoppedError("abandoned")
            if self.cancels.get(spec.job_id) is not None:
                raise JobStoppedError("canceled")

        def progress(pct: float, counts: dict[str, int]) -> None:
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S and self.current is not None:
                last[0] = time.monotonic()
                self._publish(self.current, "InProgress", progress_pct=round(pct, 1), counts=counts)

        try:
            done = execute(spec, self.store, self.storage, progress, checkpoint, self.chunk_rows)
        except JobStoppedError as stopped:
            if stopped.why == "canceled":
                self._publish(self.current or started, "Canceled", reason="canceled on request")
                self.counts["canceled"] += 1
                return True
            self.counts["abandoned"] += 1
            return False
        last_state = self.current or started
        self._publish(last_state, done.state, reason=done.reason, counts=done.counts or {},
                      rejected=done.rejected, result=done.result,
                      progress_pct=last_state.progress_pct if done.state == "Failed" else 100.0)
        outcomes = {"Succeeded": "succeeded", "PartiallySucceeded": "partially_succeeded"}
        self.counts[outcomes.get(done.state, "failed")] += 1
        return True

    def _publish(self, state: JobState, to: str, **changes: Any) -> JobState | None:
        nxt = advance(state, to, wall_ms(), **changes)
        if isinstance(nxt, Rejected):
            log.warning("%s", nxt.reason)
            return None
        self._producer.produce(job_topics(self.settings)[1], key=nxt.job_id.encode(),
                               value=dumps(nxt.to_record()))
        self._producer.poll(0)
        if nxt.final:
            self._producer.flush(30)
        self.current = None if nxt.final else nxt
        return nxt
