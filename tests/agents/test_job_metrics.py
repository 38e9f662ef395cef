"""A worker's job metrics: jobs ended by outcome, and the running job's progress."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from agents.jobs_api import JobCollector
from streams.jobs import JobSpec, JobState, advance


def test_jobs_are_counted_by_outcome_and_the_running_one_shows_its_progress() -> None:
    runner = SimpleNamespace(counts={"succeeded": 2, "failed": 1}, current=None)
    registry = CollectorRegistry()
    registry.register(JobCollector(runner))
    assert registry.get_sample_value("assetwatch_jobs_total", {"outcome": "succeeded"}) == 2
    assert registry.get_sample_value("assetwatch_job_progress_percent", {"job_id": "j"}) is None
    running = advance(JobState.accepted(JobSpec("j", "m", "a.csv", "out"), 0), "InProgress", 1,
                      progress_pct=37.5)
    runner.current = running
    assert registry.get_sample_value("assetwatch_job_progress_percent", {"job_id": "j"}) == 37.5
