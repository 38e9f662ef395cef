"""``assetwatch worker`` (the real CLI) with the health views registered, for tests.

Run as ``python -m tests.integration.health_worker worker --broker ... <worker flags>``: the
CLI's own worker command, whose app also gets ``/healthz`` and ``/readyz``
(:func:`agents.health.register_health_views`, a no-op if the worker registers them itself).
"""

from __future__ import annotations

import faust

import agents.worker
from agents.cli import main
from agents.connection import KafkaConnection
from agents.health import register_health_views, worker_readiness
from agents.scoring_agent import PipelineStats
from agents.settings import Settings

_build = agents.worker.build_worker_app


def build_with_health(settings: Settings, kafka: KafkaConnection) -> tuple[faust.App, PipelineStats]:
    app, stats = _build(settings, kafka)
    register_health_views(app, worker_readiness(app, stats.ready_checks))
    return app, stats


if __name__ == "__main__":
    agents.worker.build_worker_app = build_with_health
    main()
