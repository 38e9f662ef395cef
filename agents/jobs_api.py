"""Jobs on a worker: the job runner started with the app, and the ``/v1/jobs`` REST routes.

==========================================  ================================================
``POST /v1/jobs``                           create: ``{"model", "input", "output"[, "name",
                                            "model_version", "sensitivity", …]}`` → 202
``GET  /v1/jobs``                           every job's state
``GET  /v1/jobs/{job_id}``                  one job's state (404 if unknown)
``POST /v1/jobs/{job_id}/cancel``           ask it to stop → 202; 409 when already final
==========================================  ================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agents.broker import ensure_topics
from agents.connection import KafkaConnection
from agents.job_runner import JobRunner
from agents.jobs import JobClient, JobError, job_topic_specs, new_job_id, wall_ms
from agents.model_store import ModelStore
from agents.settings import Settings
from streams.codec import JSONDecodeError, loads
from streams.jobs import JobSpec

#: the fields a create request may carry (the rest of a JobSpec is the server's)
CREATE_FIELDS = ("model", "input", "output", "name", "model_version", "sensitivity",
                 "max_fill_points", "timestamp_column")


def spec_from_request(doc: Any, job_id: str, at_ms: int, by: str) -> JobSpec:
    """A job spec from a create request; a ``ValueError`` names what is wrong.

    >>> spec_from_request({"model": "m", "input": "a.csv", "output": "out"}, "j", 0, "rest").results_name
    'a-results.json'
    >>> spec_from_request({"model": "m", "input": "a.csv"}, "j", 0, "rest")
    Traceback (most recent call last):
    ...
    ValueError: missing field(s): output
    """
    if not isinstance(doc, dict):
        raise ValueError("the request body must be a JSON object")
    unknown = sorted(set(doc) - set(CREATE_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    missing = [f for f in ("model", "input", "output") if not isinstance(doc.get(f), str) or not doc[f]]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    for name in ("model_version", "sensitivity", "max_fill_points"):
        value = doc.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{name} must be an integer")
    for name in ("name", "timestamp_column"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            raise ValueError(f"{name} must be a string")
    return JobSpec(job_id=job_id, model_id=doc["model"], input=doc["input"], output=doc["output"],
                   name=doc.get("name"), model_version=doc.get("model_version"),
                   sensitivity=doc.get("sensitivity"), max_fill_points=doc.get("max_fill_points"),
                   timestamp_column=doc.get("timestamp_column"), submitted_at_ms=at_ms, submitted_by=by)


class JobCollector:
    """Prometheus metrics of a job runner, read when scraped (docs/metrics.md):

    * ``assetwatch_jobs_total{outcome}``: jobs this worker ended (``succeeded``,
      ``partially_succeeded``, ``failed``, ``canceled``) or gave up to another (``abandoned``);
    * ``assetwatch_job_progress_percent{job_id}``: the running job's progress (absent when idle).
    """

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily("assetwatch_jobs", "Detection jobs this worker ended, by outcome",
                                    labels=["outcome"])
        for outcome, n in sorted(self.runner.counts.items()):
            total.add_metric([outcome], n)
        yield total
        progress = GaugeMetricFamily("assetwatch_job_progress_percent",
                                     "Progress of the detection job running on this worker",
                                     labels=["job_id"])
        current = self.runner.current
        if current is not None:
            progress.add_metric([current.job_id], current.progress_pct)
        yield progress


def register_job_runner(app: faust.App, settings: Settings, kafka: KafkaConnection, store: ModelStore,
                        worker_id: str, registry: CollectorRegistry | None = None) -> JobRunner:
    """The job runner of this worker, started with the app and stopped before it shuts down;
    its metrics on ``registry``."""
    ensure_topics(kafka, job_topic_specs(settings))
    runner = JobRunner(settings, kafka, store, worker_id)
    if registry is not None:
        registry.register(JobCollector(runner))

    @app.task
    async def start_job_runner() -> None:
        runner.start()

    async def on_shutdown(sender: Any, *args: Any, **kwargs: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, runner.stop)

    cast(Any, app.on_before_shutdown).connect(on_shutdown)
    return runner


def register_jobs_api(app: faust.App, settings: Settings, kafka: KafkaConnection, runner: JobRunner) -> None:
    client = JobClient(kafka, settings, view=runner.status, create_topics=False)

    async def off_loop(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    @app.page("/v1/jobs", name="assetwatch_jobs")
    class Jobs(View):
        async def get(self, request: Request) -> Response:
            try:
                jobs = await off_loop(client.jobs)
            except JobError as exc:
                return self.json({"error": str(exc)}, status=503)
            return self.json([j.to_record() for j in jobs])

        async def post(self, request: Request) -> Response:
            try:
                doc = loads(await request.read())
                spec = spec_from_request(doc, new_job_id(), wall_ms(), "rest")
            except JSONDecodeError as exc:
                return self.json({"error": f"the request body is not JSON: {exc}"}, status=400)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            try:
                state = await off_loop(client.create, spec)
            except JobError as exc:
                return self.json({"error": str(exc)}, status=503)
            return self.json(state.to_record(), status=202)

    @app.page("/v1/jobs/{job_id}", name="assetwatch_job")
    class Job(View):
        async def get(self, request: Request, job_id: str) -> Response:
            try:
                state = await off_loop(client.get, job_id)
            except JobError as exc:
                return self.json({"error": str(exc)}, status=404)
            return self.json(state.to_record())

    @app.page("/v1/jobs/{job_id}/cancel", name="assetwatch_job_cancel")
    class CancelJob(View):
        async def post(self, request: Request, job_id: str) -> Response:
            try:
                state = await off_loop(client.get, job_id)
            except JobError as exc:
                return self.json({"error": str(exc)}, status=404)
            try:
                state = await off_loop(client.cancel, job_id, "rest")
            except JobError as exc:
                return self.json({"error": str(exc)}, status=409)
            return self.json(state.to_record(), status=202)
