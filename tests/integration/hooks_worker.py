"""``assetwatch worker`` (the real CLI) with the hook delivery agent registered, for tests.

Run as ``python -m tests.integration.hooks_worker worker --broker ... <worker flags>``: the
CLI's own worker, whose app also gets :func:`agents.delivery_agent.register_worker_hooks`
(skipped if the worker already registers it itself).
"""

from __future__ import annotations

import faust

import agents.worker
from agents.cli import main
from agents.delivery_agent import register_worker_hooks
from agents.scoring_agent import PipelineStats
from agents.settings import Settings

_build = agents.worker.build_worker_app


def build_with_hooks(settings: Settings, bootstrap: str) -> tuple[faust.App, PipelineStats]:
    app, stats = _build(settings, bootstrap)
    if not any("hook-deliveries" in str(name) for name in app.agents):
        register_worker_hooks(app, settings, bootstrap, stats.registry)
    return app, stats


if __name__ == "__main__":
    agents.worker.build_worker_app = build_with_hooks
    main()
