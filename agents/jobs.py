"""Detection jobs on Kafka (SPEC §8): their topics and the client that creates, lists and cancels.

=====================  ==================================================================
``<prefix>.jobs``      job requests (:class:`streams.jobs.JobSpec`), keyed by job id; the
                       workers share them as a consumer group ``<app id>.jobs``: one
                       worker per job, any worker can run it
``<prefix>.job-status``  each job's full state after every change, compacted by job id
``<prefix>.job-control``  cancel requests, compacted by job id; every worker follows it
=====================  ==================================================================

The client writes a job's Accepted state, then its request; the worker that takes it writes
every state after that. A cancel is a request too: the worker running the job (or the one
that takes it later) stops it and writes Canceled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka.admin import AdminClient

from agents.broker import TopicSpec, ensure_topics
from agents.connection import KafkaConnection
from agents.kafka_io import make_producer
from agents.settings import Settings
from agents.topic_view import TopicView
from agents.topics import with_durability
from streams.codec import dumps, loads
from streams.jobs import JobSpec, JobState

__all__ = ["JobClient", "JobError", "decode_job_state", "job_topic_specs", "job_topics", "new_job_id"]


class JobError(RuntimeError):
    """A job command refused (unknown job, already final); the message says why."""


#: how long a job id the status view has never shown is waited for before it is unknown
UNKNOWN_AFTER_S = 5.0


def job_topics(settings: Settings) -> tuple[str, str, str]:
    """(requests, status, control) topic names."""
    p = settings.topics.prefix
    return f"{p}.jobs", f"{p}.job-status", f"{p}.job-control"


def job_topic_specs(settings: Settings) -> list[TopicSpec]:
    requests, status, control = job_topics(settings)
    return with_durability(settings, [
        TopicSpec(requests, settings.partitions),
        TopicSpec(status, 1, {"cleanup.policy": "compact"}),
        TopicSpec(control, 1, {"cleanup.policy": "compact"}),
    ])


def decode_job_state(value: bytes) -> JobState:
    return JobState.from_record(loads(value))


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class JobClient:
    """Create, read and cancel jobs; ``view`` is a shared status view (else its own)."""

    def __init__(self, kafka: KafkaConnection, settings: Settings,
                 view: TopicView[JobState] | None = None, create_topics: bool = True) -> None:
        self.topics = job_topics(settings)
        if create_topics:  # the requests topic takes the deployment's partition count, if it exists
            existing = AdminClient(kafka.client_config()).list_topics(timeout=15).topics
            ensure_topics(kafka, [s for s in job_topic_specs(settings) if s.name not in existing])
        self._producer = make_producer(kafka)
        self._own_view = view is None
        self.view = view if view is not None else \
            TopicView(kafka, self.topics[1], decode_job_state).start()

    def create(self, spec: JobSpec) -> JobState:
        """Queue a job: its Accepted state first, then its request."""
        state = JobState.accepted(spec, wall_ms())
        requests, status, _ = self.topics
        key = spec.job_id.encode()
        self._producer.produce(status, key=key, value=dumps(state.to_record()))
        if self._producer.flush(30) != 0:
            raise JobError("could not write the job's state to the job-status topic")
        self._producer.produce(requests, key=key, value=dumps(spec.to_dict()))
        if self._producer.flush(30) != 0:
            raise JobError("could not queue the job on the jobs topic")
        return state

    def jobs(self, timeout_s: float = 15.0) -> list[JobState]:
        """Every job known, oldest first."""
        if not self.view.wait_caught_up(timeout_s):
            raise JobError(f"the job-status topic did not answer within {timeout_s:.0f} s")
        return sorted(self.view.items().values(), key=lambda s: (s.history[0][1], s.job_id))

    def get(self, job_id: str, timeout_s: float = 15.0) -> JobState:
        if not self.view.wait_caught_up(timeout_s):
            raise JobError(f"the job-status topic did not answer within {timeout_s:.0f} s")
        state = self.view.get(job_id)
        if state is None:
            raise JobError(f"no job {job_id!r}")
        return state

    def cancel(self, job_id: str, by: str = "cli") -> JobState:
        """Ask for a job to stop; refused when it is unknown or already final."""
        state = self.get(job_id)
        if state.final:
            raise JobError(f"job {job_id} is already {state.state}: nothing to cancel")
        self._producer.produce(self.topics[2], key=job_id.encode(),
                               value=dumps({"job_id": job_id, "at_ms": wall_ms(), "by": by}))
        if self._producer.flush(30) != 0:
            raise JobError("could not write the cancel request to the job-control topic")
        return state

    def wait(self, job_id: str, timeout_s: float | None,
             on_change: Callable[[JobState], None] = lambda s: None) -> JobState:
        """Follow a job until it is final (or ``timeout_s`` passes: :class:`JobError`)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        #: a job just created may not have reached this view yet: unknown for this long is unknown
        unknown_after = time.monotonic() + UNKNOWN_AFTER_S
        last = None
        while True:
            state = self.view.get(job_id)
            if state is None and self.view.caught_up.is_set() and time.monotonic() > unknown_after:
                raise JobError(f"no job {job_id!r}")
            if state is not None and state != last:
                on_change(state)
                last = state
                if state.final:
                    return state
            if deadline is not None and time.monotonic() > deadline:
                now = "unknown" if last is None else f"{last.state}, {last.progress_pct:.0f}%"
                raise JobError(f"job {job_id} not finished within {timeout_s:.0f} s ({now})")
            time.sleep(0.1)  # polling interval of a deadline-bounded wait on the status view

    def close(self) -> None:
        if self._own_view:
            self.view.close()
        self._producer.flush(5)
